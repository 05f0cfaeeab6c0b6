"""Launch pieces of the fleet outside pytest (benchmarks/bench_fleet.py): a PostgreSQL primary
from deploy/postgresql/primary-replica.sh, service instances and the worker as the systemd
units run them, and HAProxy with deploy/haproxy/entryexit.cfg as shipped in front of any
subset of the instances. Built from the fleet test's own helpers (tests/fleet/test_fleet.py)
so that the benchmark measures the topology the test checks."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.fleet.test_fleet import (
    ENTRYEXIT,
    PGBIN,
    REPO,
    Fleet,
    _serve,
    _start,
    _stop,
    free_port,
    self_signed_certificate,
    wait_for,
)

HAPROXY_CONFIG = REPO / "deploy" / "haproxy" / "entryexit.cfg"
SHIPPED_SERVERS = 3  # app1..app3 in the shipped configuration


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    database_url: str
    keys: dict[str, str]
    instance_ports: list[int]
    instances: list[subprocess.Popen[bytes]]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker_started_at: float = 0.0


@contextlib.contextmanager
def cluster(root: Path, model_dir: Path, instances: int = 3) -> Iterator[Cluster]:
    """A PostgreSQL primary, ``instances`` service instances (``serve --no-jobs``) and the
    worker, with admin and gate keys; everything is stopped on exit."""
    pg_root = Path(tempfile.mkdtemp(prefix="entryexit-cluster-pg-"))
    subprocess.run(["chown", "postgres", str(pg_root)], check=True)
    script = REPO / "deploy" / "postgresql" / "primary-replica.sh"
    passwords = {
        "ENTRYEXIT_REPLICATION_PASSWORD": secrets.token_urlsafe(18),
        "ENTRYEXIT_DB_PASSWORD": secrets.token_urlsafe(18),
    }
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ENTRYEXIT_")}
    pg_env = {**base_env, **passwords, "PGBIN": str(PGBIN)}
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []
    started = False
    try:
        done = subprocess.run(
            ["bash", str(script), "primary", str(pg_root / "primary"), str(port)],
            env=pg_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL primary did not start: {done.stdout}{done.stderr}")
        started = True
        url = (
            f"postgresql+psycopg://entryexit:{passwords['ENTRYEXIT_DB_PASSWORD']}"
            f"@127.0.0.1:{port}/entryexit"
        )
        env = {
            **base_env,
            "ENTRYEXIT_DATABASE_URL": url,
            "ENTRYEXIT_KEY_DIR": str(root / "keys"),
            "ENTRYEXIT_DATA_DIR": str(root / "data"),
            "ENTRYEXIT_MODEL_DIR": str(model_dir),
            "ENTRYEXIT_ENGINE_WORKERS": "1",
            "ENTRYEXIT_DRAIN_SECONDS": "3",
            "ENTRYEXIT_SHUTDOWN_TIMEOUT": "30",
            # Gates here send far more than one traveler's worth each: no per-key limit.
            "ENTRYEXIT_GATE_REQUESTS_PER_SECOND": "1000",
            "ENTRYEXIT_GATE_BURST": "1000",
            "MALLOC_MMAP_THRESHOLD_": "1048576",
        }
        subprocess.run([*ENTRYEXIT, "keys", "init"], env=env, check=True, capture_output=True)
        keys = {}
        for role, extra in (("admin", []), ("gate", ["--carrier", "EE"])):
            created = subprocess.run(
                [*ENTRYEXIT, "keys", "create", "--role", role, "--name", f"bench {role}", *extra],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            keys[role] = created.stdout.strip()
        ports = [free_port() for _ in range(instances)]
        served = [_serve(env, p, root / f"instance-{n}.log") for n, p in enumerate(ports)]
        processes.extend(served)
        processes.append(_start([*ENTRYEXIT, "worker"], env, root / "worker.log"))
        worker_started_at = time.time()
        for p in ports:
            wait_for(
                f"instance on {p}",
                lambda p=p: httpx.get(f"http://127.0.0.1:{p}/readyz").status_code == 200,
                timeout=180,
            )
        yield Cluster(root, env, url, keys, ports, served, processes, worker_started_at)
    finally:
        for process in processes:
            _stop(process)
        if started:
            subprocess.run(
                ["bash", str(script), "stop", str(pg_root / "primary")],
                env=pg_env,
                capture_output=True,
                check=False,
            )
        shutil.rmtree(pg_root, ignore_errors=True)


@contextlib.contextmanager
def balancer(cluster: Cluster, use: int, name: str) -> Iterator[Fleet]:
    """HAProxy (the shipped configuration) in front of the first ``use`` instances. The
    configuration names three servers: those not used point at a closed port, and this
    waits until HAProxy's checks have taken them out, so no request is sent their way."""
    root = cluster.root / name
    root.mkdir()
    bundle, trusted = self_signed_certificate(root)
    closed = free_port()
    addresses = [f"127.0.0.1:{p}" for p in cluster.instance_ports[:use]]
    addresses += [f"127.0.0.1:{closed}"] * (SHIPPED_SERVERS - len(addresses))
    lb_port, stats_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENTRYEXIT_")},
        "ENTRYEXIT_LB_BIND": f"127.0.0.1:{lb_port}",
        "ENTRYEXIT_LB_CERT": str(bundle),
        "ENTRYEXIT_LB_STATS": f"127.0.0.1:{stats_port}",
        **{f"ENTRYEXIT_APP{n + 1}": address for n, address in enumerate(addresses)},
    }
    haproxy = _start(["haproxy", "-db", "-f", str(HAPROXY_CONFIG)], env, root / "haproxy.log")
    fleet = Fleet(
        f"https://127.0.0.1:{lb_port}",
        trusted,
        cluster.env,
        cluster.database_url,
        cluster.database_url,
        cluster.instances[:use],
        cluster.instance_ports[:use],
        cluster.processes[-1],  # the one worker: the surviving one and the first one
        cluster.processes[-1],
        cluster.worker_started_at,
        cluster.keys,
    )
    try:
        wait_for(
            f"HAProxy with {use} instance(s) up and the rest down",
            lambda: server_states(stats_port) == ["UP"] * use + ["DOWN"] * (SHIPPED_SERVERS - use),
            timeout=60,
        )
        yield fleet
    finally:
        _stop(haproxy)


def server_states(stats_port: int) -> list[str]:
    """The state of app1..app3 as HAProxy's stats page reports it (CSV)."""
    csv = httpx.get(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=5).text
    states = {}
    for line in csv.splitlines():
        cells = line.split(",")
        if len(cells) > 17 and cells[0] == "instances" and cells[1].startswith("app"):
            states[cells[1]] = cells[17].split(" ")[0]
    return [states.get(f"app{n + 1}", "?") for n in range(SHIPPED_SERVERS)]
