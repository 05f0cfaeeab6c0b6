"""The fleet as deploy/ describes it, on loopback: a PostgreSQL primary and a streaming replica
(deploy/postgresql/primary-replica.sh), three service instances and a worker (the systemd
units' commands), HAProxy with TLS in front (deploy/haproxy/entryexit.cfg as shipped).

Gate clients board two flights through HAProxy with idempotency keys, retrying on errors;
one instance is killed (SIGKILL) and another stopped (SIGTERM) mid-boarding, and of the two
workers the one leading the admission work is killed too. Afterwards every key has exactly one
decision, no capture is lost or doubled, the audit chain verifies, the surviving worker took
the jobs over (the outbox drained, the purge kept running once per interval), a policy loaded
by another process is in force on a surviving instance within the stated bound, the replica
has the primary's rows and a report read from it (``ENTRYEXIT_READ_DATABASE_URL``) agrees with
the primary's."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
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

from tests.integration.api.conftest import FOREIGN_STATE, manifest_row

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
PURGE_INTERVAL_SECONDS = 2
# The stated bound for a change made by one process to reach the others (docs/fleet.md), and
# slack for this loaded 2-core machine.
INVALIDATION_BOUND_SECONDS = 1.0
INVALIDATION_SLACK_SECONDS = 1.0


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
    # The surviving worker; ``first_worker`` leads the admission work until it is killed.
    worker: subprocess.Popen[bytes]
    first_worker: subprocess.Popen[bytes]
    workers_started_at: float
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


def serve_command(port: int) -> list[str]:
    """A service instance as the systemd unit runs it in a fleet (the worker does the jobs)."""
    return [*ENTRYEXIT, "serve", "--no-jobs", "--host", "127.0.0.1", "--port", str(port)]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


PRIMARY_REPLICA_SCRIPT = REPO / "deploy" / "postgresql" / "primary-replica.sh"


def outside_env() -> dict[str, str]:
    """This process's environment without its ENTRYEXIT_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ENTRYEXIT_")}


@dataclass
class Launched:
    """PostgreSQL servers started with deploy/postgresql/primary-replica.sh as an operator
    would, under a directory the postgres user can enter (not pytest's own 0700 ones), and
    the processes that use them."""

    root: Path
    env: dict[str, str]
    started: list[Path] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def process(
        self, command: list[str], env: dict[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        started = _start(command, env, log)
        self.processes.append(started)
        return started

    def postgres(self, role: str, name: str, port: int, *upstream: str) -> str:
        """Start a ``primary`` or a ``replica`` (of ``upstream`` host and port); its URL as
        the service's database user."""
        datadir = self.root / name
        done = subprocess.run(
            ["bash", str(PRIMARY_REPLICA_SCRIPT), role, str(datadir), str(port), *upstream],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL {role} did not start: {done.stdout}{done.stderr}")
        self.started.append(datadir)
        password = self.env["ENTRYEXIT_DB_PASSWORD"]
        return f"postgresql+psycopg://entryexit:{password}@127.0.0.1:{port}/entryexit"


@contextlib.contextmanager
def launched(prefix: str) -> Iterator[Launched]:
    """Everything started through it is stopped on exit: the processes, then the servers
    (replicas before their primary)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    subprocess.run(["chown", "postgres", str(root)], check=True)
    passwords = {
        "ENTRYEXIT_REPLICATION_PASSWORD": secrets.token_urlsafe(18),
        "ENTRYEXIT_DB_PASSWORD": secrets.token_urlsafe(18),
    }
    servers = Launched(root, {**outside_env(), **passwords, "PGBIN": str(PGBIN)})
    try:
        yield servers
    finally:
        for process in servers.processes:
            _stop(process)
        for datadir in reversed(servers.started):
            subprocess.run(
                ["bash", str(PRIMARY_REPLICA_SCRIPT), "stop", str(datadir)],
                env=servers.env,
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def instance_env(database_url: str, root: Path, model_dir: Path, **settings: str) -> dict[str, str]:
    """The environment the systemd units give the service and the worker (one engine worker,
    a short drain), with keys and data under ``root``, plus ``settings``."""
    return {
        **outside_env(),
        "ENTRYEXIT_DATABASE_URL": database_url,
        "ENTRYEXIT_KEY_DIR": str(root / "keys"),
        "ENTRYEXIT_DATA_DIR": str(root / "data"),
        "ENTRYEXIT_MODEL_DIR": str(model_dir),
        "ENTRYEXIT_ENGINE_WORKERS": "1",
        "ENTRYEXIT_DRAIN_SECONDS": "3",
        "ENTRYEXIT_SHUTDOWN_TIMEOUT": "30",
        "MALLOC_MMAP_THRESHOLD_": "1048576",
        **settings,
    }


def create_keys(env: dict[str, str], label: str) -> dict[str, str]:
    """``keys init``, then an admin key and an EE gate key, as an operator creates them."""
    subprocess.run([*ENTRYEXIT, "keys", "init"], env=env, check=True, capture_output=True)
    keys = {}
    for role, extra in (("admin", []), ("gate", ["--carrier", "EE"])):
        created = subprocess.run(
            [*ENTRYEXIT, "keys", "create", "--role", role, "--name", f"{label} {role}", *extra],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        keys[role] = created.stdout.strip()
    return keys


def wait_until_ready(ports: list[int], timeout: float) -> None:
    for port in ports:
        wait_for(
            f"instance on {port}",
            lambda port=port: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, lfw_dir: Path, model_dir: Path
) -> Iterator[Fleet]:
    _requirements(lfw_dir)
    root = tmp_path_factory.mktemp("fleet")
    with launched("entryexit-fleet-pg-") as servers:
        primary_port, replica_port = free_port(), free_port()
        primary_url = servers.postgres("primary", "primary", primary_port)
        replica_url = servers.postgres(
            "replica", "replica", replica_port, "127.0.0.1", str(primary_port)
        )
        env = instance_env(
            primary_url,
            root,
            model_dir,
            ENTRYEXIT_PURGE_INTERVAL_SECONDS=str(PURGE_INTERVAL_SECONDS),
        )
        keys = create_keys(env, "fleet")

        ports = [free_port() for _ in range(3)]
        # The instances read their reports from the replica; workers and commands do not.
        serving_env = {**env, "ENTRYEXIT_READ_DATABASE_URL": replica_url}
        instances = [
            servers.process(serve_command(port), serving_env, root / f"instance-{n}.log")
            for n, port in enumerate(ports)
        ]
        workers_started_at = time.time()
        first_worker = servers.process([*ENTRYEXIT, "worker"], env, root / "worker-1.log")
        # The first worker leads the admission work (it records its first round) before the
        # second one starts, so killing the first kills the leader.
        wait_for("the first worker to lead", lambda: _job(primary_url, "admissions"), timeout=120)
        worker = servers.process([*ENTRYEXIT, "worker"], env, root / "worker-2.log")

        bundle, trusted = self_signed_certificate(root)
        lb_port = free_port()
        lb_env = {
            **outside_env(),
            "ENTRYEXIT_LB_BIND": f"127.0.0.1:{lb_port}",
            "ENTRYEXIT_LB_CERT": str(bundle),
            "ENTRYEXIT_LB_STATS": f"127.0.0.1:{free_port()}",
            "ENTRYEXIT_LB_HTTP_REQUEST_TIMEOUT": "2s",
            **{f"ENTRYEXIT_APP{n + 1}": f"127.0.0.1:{port}" for n, port in enumerate(ports)},
        }
        servers.process(
            ["haproxy", "-db", "-f", str(REPO / "deploy" / "haproxy" / "entryexit.cfg")],
            lb_env,
            root / "haproxy.log",
        )
        wait_until_ready(ports, timeout=120)
        built = Fleet(
            f"https://127.0.0.1:{lb_port}",
            trusted,
            env,
            primary_url,
            replica_url,
            instances,
            ports,
            worker,
            first_worker,
            workers_started_at,
            keys,
        )
        with built.client() as client:
            # HAProxy marks servers up after two good checks (rise 2, 1 s apart).
            wait_for("HAProxy", lambda: client.get("/readyz").status_code == 200, timeout=30)
        yield built


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
                    f"/v1/documents/{FOREIGN_STATE}/{number}/photos",
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


def _aware(moment: dt.datetime) -> dt.datetime:
    """job_runs keeps UTC without a zone (as every table here does)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


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


def _job(url: str, job: str) -> dict[str, Any] | None:
    """The job's shared record (``job_runs``), or None before its first run."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            row = (
                connection.execute(
                    text(
                        "SELECT runs, last_started_at, last_success_at, last_outcome"
                        " FROM job_runs WHERE name = :job AND last_started_at IS NOT NULL"
                    ),
                    {"job": job},
                )
                .mappings()
                .first()
            )
            return None if row is None else dict(row)
    finally:
        engine.dispose()


def _replica_caught_up(primary_url: str, replica_url: str, timeout: float = 60.0) -> float:
    """Wait until the replica has replayed everything the primary wrote so far; returns how
    long that took (the replica's lag, as this machine shows it)."""
    primary, replica = create_engine(primary_url), create_engine(replica_url)
    try:
        with primary.connect() as connection:
            target = connection.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
        began = time.monotonic()

        def replayed() -> bool:
            with replica.connect() as connection:
                return bool(
                    connection.execute(
                        text("SELECT pg_last_wal_replay_lsn() >= CAST(:target AS pg_lsn)"),
                        {"target": str(target)},
                    ).scalar_one()
                )

        wait_for("the replica to replay the primary's WAL", replayed, timeout=timeout, every=0.02)
        return time.monotonic() - began
    finally:
        primary.dispose()
        replica.dispose()


def test_a_fleet_boards_through_haproxy_while_instances_die_and_stop(
    fleet: Fleet, lfw_dir: Path
) -> None:
    boarding = _board_setup(fleet, lfw_dir)
    logs = [KeyLog(flight_id, person, str(uuid.uuid4())) for flight_id, person in boarding]
    done: list[KeyLog] = []
    lock = threading.Lock()
    killed, stopped = fleet.instances[0], fleet.instances[1]
    drain_seen: list[int] = []
    worker_killed_at: list[dt.datetime] = []

    def chaos() -> None:
        wait_for("a third boarded", lambda: len(done) >= len(logs) // 3, timeout=300, every=0.05)
        killed.send_signal(signal.SIGKILL)
        fleet.first_worker.send_signal(signal.SIGKILL)  # the admission leader, mid-work
        worker_killed_at.append(dt.datetime.now(dt.UTC))
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
    # The surviving worker took the lead of the admission work (the outbox drains) and the
    # purge, which kept running once per interval between the two workers, never more.
    wait_for("the outbox to drain", lambda: _counts(fleet.primary_url)["outbox"] == 0, timeout=120)
    assert fleet.first_worker.wait(timeout=10) == -signal.SIGKILL

    def purged_since_the_kill() -> bool:
        purge = _job(fleet.primary_url, "purge")
        return purge is not None and _aware(purge["last_started_at"]) > worker_killed_at[0]

    wait_for("a purge after the first worker's death", purged_since_the_kill, timeout=30)
    admissions = _job(fleet.primary_url, "admissions")
    assert admissions is not None
    assert _aware(admissions["last_started_at"]) > worker_killed_at[0]
    fleet.worker.send_signal(signal.SIGTERM)
    assert fleet.worker.wait(timeout=60) == 0
    purge = _job(fleet.primary_url, "purge")
    assert purge is not None
    assert purge["last_outcome"] == "ok"
    workers_ran = time.time() - fleet.workers_started_at
    # Two workers each looking four times per interval would purge about eight times as
    # often without the lease; once per interval allows this many at most.
    assert 2 <= purge["runs"] <= workers_ran / PURGE_INTERVAL_SECONDS + 1, (purge, workers_ran)

    # A policy loaded by another process (the command line) is in force on a surviving
    # instance within the bound: PostgreSQL NOTIFY reaches its listener.
    survivor = f"http://127.0.0.1:{fleet.instance_ports[2]}"
    admin = {"X-API-Key": fleet.keys["admin"]}
    before = httpx.get(f"{survivor}/v1/policies/current", headers=admin, timeout=10)
    assert before.json()["version"] == "default-2"
    loaded = subprocess.run(
        [*ENTRYEXIT, "policy", "load", "--shipped", "noncitizens-mandatory.toml"],
        env=fleet.env,
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0, loaded.stderr
    loaded_at = time.monotonic()
    wait_for(
        "the new policy on the surviving instance",
        lambda: (
            httpx.get(f"{survivor}/v1/policies/current", headers=admin, timeout=10).json()[
                "version"
            ]
            == "noncitizens-mandatory-1"
        ),
        timeout=INVALIDATION_BOUND_SECONDS + INVALIDATION_SLACK_SECONDS,
        every=0.01,
    )
    policy_seconds = time.monotonic() - loaded_at

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
    # A report the instances read from the replica agrees with the primary's, once the replica
    # has replayed everything written before it was asked.
    lag = _replica_caught_up(fleet.primary_url, fleet.replica_url)
    as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
    since = as_of - dt.timedelta(days=1)
    from_replica = httpx.get(
        f"{survivor}/v1/privacy/report",
        params={"since": since.isoformat(), "as_of": as_of.isoformat()},
        headers=admin,
        timeout=30,
    )
    assert from_replica.status_code == 200, from_replica.text
    on_primary = subprocess.run(
        [
            *ENTRYEXIT,
            "privacy",
            "report",
            "--as-of",
            as_of.isoformat(),
            "--since",
            since.isoformat(),
        ],
        env=fleet.env,  # no ENTRYEXIT_READ_DATABASE_URL: the primary
        capture_output=True,
        text=True,
    )
    assert on_primary.returncode == 0, on_primary.stderr
    replica_report, primary_report = from_replica.json(), json.loads(on_primary.stdout)
    for part in ("held", "overdue", "decisions"):
        assert replica_report[part] == primary_report[part], part
    assert sum(replica_report["held"].values()) > 0
    retried = [log for log in logs if log.errors and log.seconds_to_decision is not None]
    failover = max((log.seconds_to_decision or 0.0 for log in retried), default=0.0)
    print(  # noqa: T201 - the test's own measurements, shown with -s
        f"fleet: {len(logs)} travelers boarded in {boarding_seconds:.1f} s through HAProxy"
        f" ({len(matched)} matched); {len(retried)} keys retried after errors, the slowest"
        f" decided {failover:.1f} s after its first attempt; a policy loaded by the CLI was"
        f" in force on a surviving instance {policy_seconds * 1000:.0f} ms later; the replica"
        f" replayed the primary's WAL {lag * 1000:.0f} ms after it was asked"
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
