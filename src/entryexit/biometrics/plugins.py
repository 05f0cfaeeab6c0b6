"""Installing and loading recognizers: the built-in SFace or an agency's ONNX plug-in.

A plug-in is installed by copying its ONNX file and manifest into ``MODEL_DIR/plugins/`` after
checking that the manifest is valid and that the model loads and answers with the dimension the
manifest states; both files' SHA-256 are recorded, and checked again on every load, so a model
or a threshold changed on disk afterwards is refused.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from entryexit.biometrics.embed import SFACE_MANIFEST
from entryexit.biometrics.models import (
    REGISTRY,
    InstalledModel,
    ModelStatus,
    read_install_records,
    sha256_of_file,
    verified_model_path,
    write_install_records,
)
from entryexit.biometrics.recognizer import (
    OnnxEmbedder,
    RecognizerManifest,
    parse_recognizer_manifest,
)
from entryexit.errors import BiometricError, ModelInstallError, ModelUnavailableError

PLUGIN_DIR = "plugins"


def _plugin_paths(model_dir: Path, key: str) -> tuple[Path, Path]:
    folder = model_dir / PLUGIN_DIR
    return folder / f"{key}.onnx", folder / f"{key}.toml"


def load_recognizer(model_dir: Path, key: str) -> tuple[Path, RecognizerManifest]:
    """The verified model file and manifest of recognizer ``key``."""
    if key == SFACE_MANIFEST.key:
        return verified_model_path(model_dir, REGISTRY[key]), SFACE_MANIFEST
    record = read_install_records(model_dir).get(key)
    model_path, manifest_path = _plugin_paths(model_dir, key)
    if record is None or record.get("plugin") != "true":
        raise ModelUnavailableError(
            f"no recognizer {key!r} is installed in {model_dir}; install it with"
            " `entryexit models install --onnx FILE --manifest FILE`"
        )
    for path, recorded in (
        (model_path, record["sha256"]),
        (manifest_path, record["manifest_sha256"]),
    ):
        if not path.is_file() or sha256_of_file(path) != recorded:
            raise ModelUnavailableError(
                f"{path} is missing or does not match the SHA-256 recorded when {key} was"
                " installed; install the model again"
            )
    return model_path, parse_recognizer_manifest(manifest_path.read_text(encoding="utf-8"))


def install_onnx_model(model_dir: Path, model_file: Path, manifest_file: Path) -> InstalledModel:
    """Check and install a plug-in recognizer; nothing is left behind if any check fails."""
    try:
        manifest_text = manifest_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelInstallError(f"cannot read the manifest {manifest_file}: {exc}") from None
    manifest = parse_recognizer_manifest(manifest_text)
    if manifest.key in REGISTRY:
        raise ModelInstallError(f"{manifest.key!r} is a built-in model's key; choose another")
    if not model_file.is_file():
        raise ModelInstallError(f"{model_file} is not a file")
    _check_model_answers(model_file, manifest)

    model_path, manifest_path = _plugin_paths(model_dir, manifest.key)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    staged_model = model_path.with_suffix(".onnx.partial")
    staged_manifest = manifest_path.with_suffix(".toml.partial")
    try:
        shutil.copyfile(model_file, staged_model)
        staged_manifest.write_text(manifest_text, encoding="utf-8")
        model_sha256 = sha256_of_file(staged_model)
        staged_model.replace(model_path)
        staged_manifest.replace(manifest_path)
    finally:
        staged_model.unlink(missing_ok=True)
        staged_manifest.unlink(missing_ok=True)
    records = read_install_records(model_dir)
    records[manifest.key] = {
        "key": manifest.key,
        "name": manifest.name,
        "version": manifest.version,
        "role": "recognizer",
        "filename": f"{PLUGIN_DIR}/{model_path.name}",
        "sha256": model_sha256,
        "manifest_sha256": sha256_of_file(manifest_path),
        "license": manifest.licence,
        "origin": "plug-in",
        "source": f"file:{model_file.resolve()}",
        "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "plugin": "true",
    }
    write_install_records(model_dir, records)
    return next(m for m in list_plugins(model_dir) if m.key == manifest.key)


def _check_model_answers(model_file: Path, manifest: RecognizerManifest) -> None:
    """Load the model and embed two grey crops: the output must have the stated dimension."""
    try:
        embedder = OnnxEmbedder(model_file, manifest)
        crops = [
            np.full((manifest.input_height, manifest.input_width, 3), value, dtype=np.uint8)
            for value in (96, 160)
        ]
        embedder.embed(crops)
    except (ModelUnavailableError, BiometricError) as exc:
        raise ModelInstallError(
            f"{model_file.name} does not work as its manifest describes: {exc}"
        ) from None


def list_plugins(model_dir: Path) -> list[InstalledModel]:
    result = []
    for key, record in read_install_records(model_dir).items():
        if record.get("plugin") != "true":
            continue
        model_path, manifest_path = _plugin_paths(model_dir, key)
        if not (model_path.is_file() and manifest_path.is_file()):
            status = ModelStatus.MISSING
        elif sha256_of_file(model_path) != record.get("sha256") or sha256_of_file(
            manifest_path
        ) != record.get("manifest_sha256"):
            status = ModelStatus.TAMPERED
        else:
            status = ModelStatus.OK
        result.append(
            InstalledModel(
                key=key,
                name=record.get("name", key),
                version=record.get("version", ""),
                role="recognizer",
                filename=record.get("filename", ""),
                sha256=record.get("sha256", ""),
                license=record.get("license", ""),
                origin="plug-in",
                source=record.get("source", ""),
                installed_at=record.get("installed_at", ""),
                status=status,
            )
        )
    return result
