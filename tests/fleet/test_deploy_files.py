"""What deploy/ ships is valid for the tools that read it: HAProxy accepts its configuration
and systemd its units (this machine's PID 1 is not systemd: ``systemd-analyze verify``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.fleet]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (scripts/test installs HAProxy; systemd ships it)"
        if os.environ.get("CI") and name == "haproxy":
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_haproxy_accepts_the_shipped_configuration(tmp_path: Path) -> None:
    haproxy = _tool("haproxy")
    certificate = tmp_path / "lb.pem"
    made = subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "1", "-subj", "/CN=test", "-keyout", str(certificate),
            "-out", str(tmp_path / "cert.pem"),
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip("openssl cannot make a test certificate here")
    certificate.write_bytes(certificate.read_bytes() + (tmp_path / "cert.pem").read_bytes())
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ENTRYEXIT_LB_BIND": "127.0.0.1:1",
        "ENTRYEXIT_LB_CERT": str(certificate),
        "ENTRYEXIT_LB_STATS": "127.0.0.1:2",
        "ENTRYEXIT_APP1": "127.0.0.1:3",
        "ENTRYEXIT_APP2": "127.0.0.1:4",
        "ENTRYEXIT_APP3": "127.0.0.1:5",
    }
    config = DEPLOY / "haproxy" / "entryexit.cfg"
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(config)], env=env, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Without its certificate the same configuration is refused (the check can fail).
    refused = subprocess.run(
        [haproxy, "-c", "-f", str(config)],
        env={**env, "ENTRYEXIT_LB_CERT": str(tmp_path / "missing.pem")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    # The units name the installed path; point them at this checkout's command instead, so
    # that verify can check the executable too.
    entryexit = Path(sys.executable).with_name("entryexit")
    assert entryexit.exists()
    units = []
    for source, name in (
        (DEPLOY / "systemd" / "entryexit@.service", "entryexit@8001.service"),
        (DEPLOY / "systemd" / "entryexit-worker.service", "entryexit-worker.service"),
    ):
        unit = tmp_path / name
        unit.write_text(
            source.read_text().replace("/opt/entryexit/.venv/bin/entryexit", str(entryexit))
        )
        units.append(str(unit))
    verified = subprocess.run(
        [analyze, "verify", "--man=no", *units], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stderr
    problems = [
        line
        for line in verified.stderr.splitlines()
        # This machine has no systemd running: its own units are not ours to judge.
        if line.strip() and ("entryexit" in line)
    ]
    assert problems == [], problems


def test_the_replication_script_refuses_to_run_without_its_secrets(tmp_path: Path) -> None:
    script = DEPLOY / "postgresql" / "primary-replica.sh"
    env = {"PATH": os.environ.get("PATH", ""), "ENTRYEXIT_DB_PASSWORD": "a-long-password-1"}
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("runuser is needed to run the script as root")
    run = subprocess.run(
        ["bash", str(script), "primary", str(tmp_path / "data"), "5999"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "ENTRYEXIT_REPLICATION_PASSWORD" in run.stderr
    assert not (tmp_path / "data").exists()
