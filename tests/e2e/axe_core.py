"""axe-core for the kiosk accessibility scan, pinned: the exact version and the npm integrity
hash are in ``tests/e2e/axe/package-lock.json`` (``npm ci`` refuses anything else), and the
script the browser runs is checked against the SHA-256 axe-core publishes for that version
(its ``sri-history.json``) before every use. It is installed into a cache outside the
repository, never committed. The scan cannot silently change: a script that is not the pinned
one fails the test, and in CI (``CI=true``) so does a missing one, which elsewhere (a
developer without npm or network) skips."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

AXE_VERSION = "4.10.2"
AXE_MIN_SHA256 = "tRHNnewBx29LKtFyO2a22zfUwutO0ZkHbhgp2e57deM="
LOCK_DIR = Path(__file__).parent / "axe"
AXE_CACHE = Path(
    os.environ.get("ENTRYEXIT_TEST_AXE_DIR", Path.home() / ".cache" / "entryexit" / "axe-core")
)
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's ca-certificates


class AxeUnavailableError(Exception):
    """axe-core could not be installed (no npm, no network)."""


class AxeNotPinnedError(Exception):
    """The script found is not the pinned axe-core."""


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _script(cache: Path) -> Path:
    return cache / "node_modules" / "axe-core" / "axe.min.js"


def _npm_ci(npm: str, cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(LOCK_DIR / name, cache / name)
    # Node trusts its own CA bundle, not the system's: behind a TLS-inspecting proxy whose
    # CA the system trusts (as on this project's machines), npm fails unless told, and a
    # CI with a minimal environment does not carry NODE_EXTRA_CA_CERTS.
    environment = dict(os.environ)
    if "NODE_EXTRA_CA_CERTS" not in environment and SYSTEM_CA_BUNDLE.is_file():
        environment["NODE_EXTRA_CA_CERTS"] = str(SYSTEM_CA_BUNDLE)
    done = subprocess.run(
        [npm, "ci", "--prefix", str(cache), "--ignore-scripts", "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=environment,
        cwd=cache,
    )
    if done.returncode != 0:
        if "EINTEGRITY" in done.stderr:
            raise AxeNotPinnedError(f"npm refused axe-core: {done.stderr.strip()[-300:]}")
        raise AxeUnavailableError(f"npm ci failed: {done.stderr.strip()[-300:]}")


def pinned_axe_source(cache: Path, npm: str | None, expected_sha256: str = AXE_MIN_SHA256) -> str:
    """The pinned axe-core script, from the cache or installed into it with ``npm ci``."""
    script = _script(cache)
    if script.is_file() and _sha256(script.read_bytes()) == expected_sha256:
        return script.read_text(encoding="utf-8")
    if npm is None:
        if script.is_file():
            raise AxeNotPinnedError(f"{script} is not axe-core {AXE_VERSION} and npm is missing")
        raise AxeUnavailableError("npm is not installed: cannot install axe-core")
    _npm_ci(npm, cache)
    if not script.is_file():
        raise AxeUnavailableError(f"npm ci left no {script}")
    found = _sha256(script.read_bytes())
    if found != expected_sha256:
        raise AxeNotPinnedError(
            f"{script} has SHA-256 {found}, not the pinned {expected_sha256} of axe-core"
            f" {AXE_VERSION}"
        )
    return script.read_text(encoding="utf-8")


def axe_source(
    cache: Path = AXE_CACHE,
    npm: str | None = None,
    expected_sha256: str = AXE_MIN_SHA256,
) -> str:
    """For a test: the pinned script; a wrong one fails the test, a missing one fails it in
    CI and skips it elsewhere."""
    try:
        return pinned_axe_source(cache, npm or shutil.which("npm"), expected_sha256)
    except AxeNotPinnedError as error:
        pytest.fail(f"the accessibility scan is not the pinned axe-core: {error}")
    except AxeUnavailableError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(
                f"axe-core is unavailable in CI, the accessibility scan cannot run: {error}"
            )
        pytest.skip(f"axe-core is unavailable, no accessibility scan: {error}")
