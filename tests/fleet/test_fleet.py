"""The fleet as deploy/ describes it, on loopback: a PostgreSQL primary and a streaming replica
(deploy/postgresql/primary-replica.sh), three service instances and a worker (the systemd
units' commands), HAProxy with TLS in front (deploy/haproxy/entryexit.cfg as shipped).

Gate clients board two flights through HAProxy with idempotency keys, retrying on errors;
one instance is killed (SIGKILL) and another stopped (SIGTERM) mid-boarding. Afterwards every
key has exactly one decision, no capture is lost or doubled, the audit chain verifies, the
outbox is drained and the replica has the primary's rows."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.integration.api.conftest import manifest_row

pytestmark = [pytest.mark.fleet, pytest.mark.models, pytest.mark.lfw, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _newest_postgres_bin() -> Path:
    """Debian's newest installed PostgreSQL server (scripts/lib/postgres.sh installs it)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: [int(part) for part in path.parent.name.split(".") if part.isdigit()],
    )
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


PGBIN = Path(os.environ.get("PGBIN") or _newest_postgres_bin())
ENTRYEXIT = [sys.executable, "-m", "entryexit"]
TRAVELERS_PER_FLIGHT = 10
GATE_CLIENTS = 4
TABLES = ("captures", "capture_idempotency_keys", "encounters", "audit_events", "admissions")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Any, timeout: float = 60.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception:  # not up yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made here: HAProxy's PEM (certificate and key) and the
    certificate alone, for the gates to trust."""
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entryexit fleet test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    bundle, trusted = directory / "haproxy.pem", directory / "ca.pem"
    bundle.write_bytes(cert_pem + key_pem)
    bundle.chmod(0o600)
    trusted.write_bytes(cert_pem)
    return bundle, trusted


@dataclass
class Fleet:
    lb: str
    trusted_cert: Path
    env: dict[str, str]
    primary_url: str
    replica_url: str
    instances: list[subprocess.Popen[bytes]]
    instance_ports: list[int]
    worker: subprocess.Popen[bytes]
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, timeout: float = 30.0) -> httpx.Client:
        trust = ssl.create_default_context(cafile=str(self.trusted_cert))
        return httpx.Client(base_url=self.lb, verify=trust, timeout=timeout)


def _requirements(lfw_dir: Path) -> None:
    missing = [
        what
        for what, ok in (
            ("haproxy (scripts/lib/haproxy.sh installs it)", _which("haproxy")),
            (f"PostgreSQL binaries in {PGBIN}", (PGBIN / "initdb").exists()),
            ("runuser and a postgres user", _which("runuser") and _has_postgres_user()),
        )
        if not ok
    ]
    if missing:
        message = "the fleet test needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert lfw_dir.is_dir()


def _which(name: str) -> bool:
    from shutil import which

    return which(name) is not None


def _has_postgres_user() -> bool:
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process whose output goes to ``log`` (kept for a failing run's post-mortem)."""
    with log.open("wb") as handle:
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return _start(
        [*ENTRYEXIT, "serve", "--no-jobs", "--host", "127.0.0.1", "--port", str(port)], env, log
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, lfw_dir: Path, model_dir: Path
) -> Iterator[Fleet]:
    _requirements(lfw_dir)
    root = tmp_path_factory.mktemp("fleet")
    # The servers run as the postgres user, who cannot enter pytest's own (0700) directories.
    pg_root = Path(tempfile.mkdtemp(prefix="entryexit-fleet-pg-"))
    subprocess.run(["chown", "postgres", str(pg_root)], check=True)
    secrets_env = {
        "ENTRYEXIT_REPLICATION_PASSWORD": secrets.token_urlsafe(18),
        "ENTRYEXIT_DB_PASSWORD": secrets.token_urlsafe(18),
    }
    script = REPO / "deploy" / "postgresql" / "primary-replica.sh"
    primary_port, replica_port = free_port(), free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ENTRYEXIT_")}
    pg_env = {**base_env, **secrets_env, "PGBIN": str(PGBIN)}
    processes: list[subprocess.Popen[bytes]] = []
    started_pg: list[Path] = []
    try:
        for args in (
            ["primary", str(pg_root / "primary"), str(primary_port)],
            [
                "replica",
                str(pg_root / "replica"),
                str(replica_port),
                "127.0.0.1",
                str(primary_port),
            ],
        ):
            done = subprocess.run(
                ["bash", str(script), *args], env=pg_env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stdout + done.stderr
            started_pg.append(pg_root / args[1].rsplit("/", 1)[-1])
        password = secrets_env["ENTRYEXIT_DB_PASSWORD"]
        primary_url = (
            f"postgresql+psycopg://entryexit:{password}@127.0.0.1:{primary_port}/entryexit"
        )
        replica_url = (
            f"postgresql+psycopg://entryexit:{password}@127.0.0.1:{replica_port}/entryexit"
        )

        env = {
            **base_env,
            "ENTRYEXIT_DATABASE_URL": primary_url,
            "ENTRYEXIT_KEY_DIR": str(root / "keys"),
            "ENTRYEXIT_DATA_DIR": str(root / "data"),
            "ENTRYEXIT_MODEL_DIR": str(model_dir),
            "ENTRYEXIT_ENGINE_WORKERS": "1",
            "ENTRYEXIT_DRAIN_SECONDS": "3",
            "ENTRYEXIT_SHUTDOWN_TIMEOUT": "30",
            "ENTRYEXIT_PURGE_INTERVAL_SECONDS": "2",
            "MALLOC_MMAP_THRESHOLD_": "1048576",
        }
        keys_init = subprocess.run(
            [*ENTRYEXIT, "keys", "init"], env=env, capture_output=True, text=True
        )
        assert keys_init.returncode == 0, keys_init.stderr
        keys = {}
        for role, extra in (("admin", []), ("gate", ["--carrier", "EE"])):
            created = subprocess.run(
                [*ENTRYEXIT, "keys", "create", "--role", role, "--name", f"fleet {role}", *extra],
                env=env,
                capture_output=True,
                text=True,
            )
            assert created.returncode == 0, created.stderr
            keys[role] = created.stdout.strip()

        ports = [free_port() for _ in range(3)]
        instances = [_serve(env, port, root / f"instance-{n}.log") for n, port in enumerate(ports)]
        processes.extend(instances)
        worker = _start([*ENTRYEXIT, "worker"], env, root / "worker.log")
        processes.append(worker)

        bundle, trusted = self_signed_certificate(root)
        lb_port = free_port()
        lb_env = {
            **base_env,
            "ENTRYEXIT_LB_BIND": f"127.0.0.1:{lb_port}",
            "ENTRYEXIT_LB_CERT": str(bundle),
            "ENTRYEXIT_LB_STATS": f"127.0.0.1:{free_port()}",
            "ENTRYEXIT_LB_HTTP_REQUEST_TIMEOUT": "2s",
            **{f"ENTRYEXIT_APP{n + 1}": f"127.0.0.1:{port}" for n, port in enumerate(ports)},
        }
        haproxy = _start(
            ["haproxy", "-db", "-f", str(REPO / "deploy" / "haproxy" / "entryexit.cfg")],
            lb_env,
            root / "haproxy.log",
        )
        processes.append(haproxy)
        for port in ports:
            wait_for(
                f"instance on {port}",
                lambda port=port: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200,
                timeout=120,
            )
        built = Fleet(
            f"https://127.0.0.1:{lb_port}",
            trusted,
            env,
            primary_url,
            replica_url,
            instances,
            ports,
            worker,
            keys,
        )
        with built.client() as client:
            # HAProxy marks servers up after two good checks (rise 2, 1 s apart).
            wait_for("HAProxy", lambda: client.get("/readyz").status_code == 200, timeout=30)
        yield built
    finally:
        for process in processes:
            _stop(process)
        for datadir in reversed(started_pg):
            subprocess.run(
                ["bash", str(script), "stop", str(datadir)], env=pg_env, capture_output=True
            )
        shutil.rmtree(pg_root, ignore_errors=True)


def _people(lfw_dir: Path, count: int) -> list[str]:
    people = sorted(
        d.name
        for d in (lfw_dir / "images").iterdir()
        if d.is_dir() and len(list(d.glob("*.jpg"))) >= 2
    )
    assert len(people) >= count, "lfw-dev has too few people with two photos"
    return people[:count]


def _photo(lfw_dir: Path, person: str, number: int) -> bytes:
    return (lfw_dir / "images" / person / f"{person}_{number:04d}.jpg").read_bytes()


def _board_setup(fleet: Fleet, lfw_dir: Path) -> list[tuple[str, str]]:
    """Two exit flights, each with its travelers enrolled and its gallery staged (through
    HAProxy). Returns (flight id, person) for every traveler."""
    officer = {"X-API-Key": fleet.keys["admin"]}
    people = _people(lfw_dir, 2 * TRAVELERS_PER_FLIGHT)
    boarding: list[tuple[str, str]] = []
    with fleet.client(timeout=60) as client:
        for index in range(2):
            created = client.post(
                "/v1/flights",
                json={
                    "carrier": "EE",
                    "number": f"90{index}",
                    "scheduled_departure": (
                        dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
                    ).isoformat(),
                    "origin": "AAA",
                    "destination": "BBB",
                    "direction": "exit",
                },
                headers=officer,
            )
            assert created.status_code == 201, created.text
            flight_id = created.json()["id"]
            group = people[index * TRAVELERS_PER_FLIGHT : (index + 1) * TRAVELERS_PER_FLIGHT]
            numbers = [f"F{index}{n:06d}" for n in range(len(group))]
            manifest = client.put(
                f"/v1/flights/{flight_id}/manifest",
                json={
                    "travelers": [
                        manifest_row(number, person.split("_")[-1].upper())
                        for number, person in zip(numbers, group, strict=True)
                    ]
                },
                headers=officer,
            )
            assert manifest.status_code == 200, manifest.text
            for number, person in zip(numbers, group, strict=True):
                enrolled = client.post(
                    f"/v1/documents/UTO/{number}/photos",
                    files={"photo": ("p.jpg", _photo(lfw_dir, person, 1), "image/jpeg")},
                    headers=officer,
                )
                assert enrolled.status_code == 201, enrolled.text
            staged = client.post(f"/v1/flights/{flight_id}/gallery", headers=officer)
            assert staged.status_code == 200, staged.text
            boarding.extend((flight_id, person) for person in group)
    return boarding


@dataclass
class KeyLog:
    """Every answer a gate got for one idempotency key."""

    flight_id: str
    person: str
    key: str
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    replayed: int = 0
    seconds_to_decision: float | None = None


def _gate(
    fleet: Fleet, lfw_dir: Path, log: KeyLog, done: list[KeyLog], lock: threading.Lock
) -> None:
    """A gate camera: sends the capture with its key and retries (same key) on any error
    that is not a decision, as a gate whose request timed out or whose instance died would."""
    photo = _photo(lfw_dir, log.person, 2)
    headers = {"X-API-Key": fleet.keys["gate"], "Idempotency-Key": log.key}
    began = time.monotonic()
    with fleet.client(timeout=30) as client:
        for attempt in range(12):
            try:
                response = client.post(
                    f"/v1/flights/{log.flight_id}/captures",
                    files={"photo": ("c.jpg", photo, "image/jpeg")},
                    data={"gate": "G1", "device": "cam-1"},
                    headers=headers,
                )
            except httpx.TransportError as exc:
                log.errors.append(type(exc).__name__)
            else:
                if response.status_code == 200:
                    log.answers.append((200, response.json()))
                    log.seconds_to_decision = time.monotonic() - began
                    # A second send of the same key, as a gate that lost the first answer:
                    # it must get the same decision.
                    if attempt == 0 and len(log.answers) == 1 and log.key[0] in "0123":
                        try:
                            again = client.post(
                                f"/v1/flights/{log.flight_id}/captures",
                                files={"photo": ("c.jpg", photo, "image/jpeg")},
                                data={"gate": "G1", "device": "cam-1"},
                                headers=headers,
                            )
                            if again.status_code == 200:
                                log.answers.append((200, again.json()))
                                log.replayed += again.headers.get("Idempotent-Replayed") == "true"
                            else:
                                log.errors.append(str(again.status_code))
                        except httpx.TransportError as exc:
                            log.errors.append(type(exc).__name__)
                    break
                log.errors.append(str(response.status_code))
                if response.status_code < 500 and response.status_code != 429:
                    break
            time.sleep(min(0.2 * (attempt + 1), 1.5))
    with lock:
        done.append(log)


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                # Table names from this module's own constant, never from input.
                table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
                for table in (*TABLES, "outbox")
            }
    finally:
        engine.dispose()


def test_a_fleet_boards_through_haproxy_while_instances_die_and_stop(
    fleet: Fleet, lfw_dir: Path
) -> None:
    boarding = _board_setup(fleet, lfw_dir)
    logs = [KeyLog(flight_id, person, str(uuid.uuid4())) for flight_id, person in boarding]
    done: list[KeyLog] = []
    lock = threading.Lock()
    killed, stopped = fleet.instances[0], fleet.instances[1]
    drain_seen: list[int] = []

    def chaos() -> None:
        wait_for("a third boarded", lambda: len(done) >= len(logs) // 3, timeout=300, every=0.05)
        killed.send_signal(signal.SIGKILL)
        wait_for(
            "two thirds boarded", lambda: len(done) >= 2 * len(logs) // 3, timeout=300, every=0.05
        )
        stopped.send_signal(signal.SIGTERM)
        # Draining: still answering, but not ready, so HAProxy takes it out first.
        drain_seen.append(
            httpx.get(f"http://127.0.0.1:{fleet.instance_ports[1]}/readyz", timeout=5).status_code
        )

    began = time.monotonic()
    chaos_thread = threading.Thread(target=chaos, daemon=True)
    chaos_thread.start()
    with ThreadPoolExecutor(max_workers=GATE_CLIENTS) as pool:
        list(pool.map(lambda log: _gate(fleet, lfw_dir, log, done, lock), logs))
    chaos_thread.join(timeout=60)
    boarding_seconds = time.monotonic() - began

    assert killed.wait(timeout=10) == -signal.SIGKILL
    assert stopped.wait(timeout=60) == 0  # a graceful stop exits 0
    assert drain_seen == [503]

    # Every key got exactly one decision, however many times it was sent or answered.
    decisions: dict[str, tuple[str, str]] = {}
    for log in logs:
        answered = [body for status, body in log.answers if status == 200]
        assert answered, f"key {log.key} never got a decision: {log.errors}"
        assert {(b["capture_id"], b["decision"]) for b in answered} == {
            (answered[0]["capture_id"], answered[0]["decision"])
        }, log.answers
        decisions[log.key] = (answered[0]["capture_id"], answered[0]["decision"])
    matched = [key for key, (_, decision) in decisions.items() if decision == "match"]
    # Keys sent twice on purpose after an answer: the second answer was a replay.
    assert sum(log.replayed for log in logs) >= 1
    assert len(matched) >= 0.8 * len(logs), decisions

    # The survivors answer; the worker drains the outbox and stops gracefully.
    with fleet.client() as client:
        assert client.get("/readyz").status_code == 200
        request_id = client.get("/healthz", headers={"X-Request-ID": "gate-7.trace-1"})
        assert request_id.headers["X-Request-ID"] == "gate-7.trace-1"
        assert client.get("/healthz").headers["X-Request-ID"]
    wait_for("the outbox to drain", lambda: _counts(fleet.primary_url)["outbox"] == 0, timeout=120)
    fleet.worker.send_signal(signal.SIGTERM)
    assert fleet.worker.wait(timeout=60) == 0

    primary = _counts(fleet.primary_url)
    # No capture lost or doubled: one record and one key row per key, one encounter per
    # matched traveler (each a different traveler: the flights' unique constraint).
    assert primary["captures"] == len(logs)
    assert primary["capture_idempotency_keys"] == len(logs)
    assert primary["encounters"] == len(matched)
    engine = create_engine(fleet.primary_url)
    try:
        with engine.connect() as connection:
            stored = {
                str(key): str(capture_id)
                for key, capture_id in connection.execute(
                    text("SELECT key, capture_id FROM capture_idempotency_keys")
                )
            }
    finally:
        engine.dispose()
    assert stored == {key: capture_id for key, (capture_id, _) in decisions.items()}

    verified = subprocess.run(
        [*ENTRYEXIT, "audit", "verify"], env=fleet.env, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # The replica has caught up: the same rows as the primary.
    wait_for("the replica", lambda: _counts(fleet.replica_url) == primary, timeout=60)
    retried = [log for log in logs if log.errors and log.seconds_to_decision is not None]
    failover = max((log.seconds_to_decision or 0.0 for log in retried), default=0.0)
    print(  # noqa: T201 - the test's own measurements, shown with -s
        f"fleet: {len(logs)} travelers boarded in {boarding_seconds:.1f} s through HAProxy"
        f" ({len(matched)} matched); {len(retried)} keys retried after errors, the slowest"
        f" decided {failover:.1f} s after its first attempt"
    )


def test_a_client_that_trickles_its_headers_is_cut_off_by_haproxy(fleet: Fleet) -> None:
    host, port = fleet.lb.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(fleet.trusted_cert))
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: entryexit\r\n")  # never finished
        began = time.monotonic()
        answer = tls.recv(4096)
        waited = time.monotonic() - began
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert waited < 6  # timeout http-request (2 s here), not the client timeout (30 s)


def test_plain_http_is_not_answered_on_the_tls_port(fleet: Fleet) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(
            fleet.lb.replace("https://", "http://") + "/healthz", timeout=5
        ).raise_for_status()
