"""Launch pieces of the fleet outside pytest (benchmarks/bench_fleet.py): a PostgreSQL primary
from deploy/postgresql/primary-replica.sh, service instances and the worker as the systemd
units run them, and HAProxy with deploy/haproxy/entryexit.cfg as shipped in front of any
subset of the instances. Built from the fleet test's own helpers (tests/fleet/test_fleet.py)
so that the benchmark measures the topology the test checks."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.fleet.test_fleet import (
    ENTRYEXIT,
    REPO,
    Fleet,
    _start,
    _stop,
    create_keys,
    free_port,
    instance_env,
    launched,
    outside_env,
    self_signed_certificate,
    serve_command,
    wait_for,
    wait_until_ready,
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
    worker, with admin and gate keys; everything is stopped on exit. The primary, the
    environment and the keys are made as the fleet test makes them (its helpers)."""
    with launched("entryexit-cluster-pg-") as servers:
        url = servers.postgres("primary", "primary", free_port())
        env = instance_env(
            url,
            root,
            model_dir,
            # Gates here send far more than one traveler's worth each: no per-key limit.
            ENTRYEXIT_GATE_REQUESTS_PER_SECOND="1000",
            ENTRYEXIT_GATE_BURST="1000",
        )
        keys = create_keys(env, "bench")
        ports = [free_port() for _ in range(instances)]
        served = [
            servers.process(serve_command(p), env, root / f"instance-{n}.log")
            for n, p in enumerate(ports)
        ]
        servers.process([*ENTRYEXIT, "worker"], env, root / "worker.log")
        worker_started_at = time.time()
        wait_until_ready(ports, timeout=180)
        yield Cluster(root, env, url, keys, ports, served, servers.processes, worker_started_at)


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
        **outside_env(),
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
