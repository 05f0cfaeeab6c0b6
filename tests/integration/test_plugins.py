"""Bring-your-own recognizer: install an ONNX plug-in, run the engine on it, refuse tampering,
and switch a deployment's model without mixing template spaces."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict, Unpack

import pytest

from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.biometrics import EngineSettings, FaceEngine
from entryexit.biometrics.models import (
    MANIFEST_NAME,
    SFACE_2021DEC,
    YUNET_2023MAR,
    ModelStatus,
)
from entryexit.biometrics.plugins import install_onnx_model, list_plugins, load_recognizer
from entryexit.bootstrap import build_services, operating_thresholds
from entryexit.cli import main
from entryexit.config import Settings
from entryexit.domain.model import Direction, DocumentKey, PhotoSource
from entryexit.errors import ModelInstallError, ModelUnavailableError
from entryexit.services.flights import NewFlight
from tests.conftest import lfw_image
from tests.onnx_builder import TINY_DIMENSION, tiny_manifest, write_tiny_model
from tests.unit.services.test_services import traveler

pytestmark = [pytest.mark.models]


@pytest.fixture
def plugin_dir(tmp_path: Path, model_dir: Path) -> Path:
    """A model directory with the built-in models (linked) and nothing else."""
    target = tmp_path / "models"
    target.mkdir()
    for spec in (YUNET_2023MAR, SFACE_2021DEC):
        (target / spec.filename).symlink_to(model_dir / spec.filename)
    return target


class _TinyManifest(TypedDict, total=False):
    key: str
    dimension: int
    runtime: str


def install_tiny(plugin_dir: Path, tmp_path: Path, **manifest: Unpack[_TinyManifest]) -> Path:
    model = write_tiny_model(tmp_path / "tiny.onnx")
    manifest_file = tmp_path / "tiny.toml"
    manifest_file.write_text(tiny_manifest(**manifest), encoding="utf-8")
    install_onnx_model(plugin_dir, model, manifest_file)
    return plugin_dir


def test_a_plug_in_is_installed_verified_and_listed(plugin_dir: Path, tmp_path: Path) -> None:
    install_tiny(plugin_dir, tmp_path)
    assert (plugin_dir / "plugins" / "tiny-test.onnx").is_file()
    [listed] = list_plugins(plugin_dir)
    assert (listed.key, listed.status, listed.origin) == ("tiny-test", ModelStatus.OK, "plug-in")
    path, manifest = load_recognizer(plugin_dir, "tiny-test")
    assert path.name == "tiny-test.onnx"
    assert manifest.dimension == TINY_DIMENSION
    records = json.loads((plugin_dir / MANIFEST_NAME).read_text())
    assert {r["key"] for r in records} == {"tiny-test"}


@pytest.mark.parametrize("which", ["onnx", "toml"])
def test_a_plug_in_changed_after_install_is_refused(
    plugin_dir: Path, tmp_path: Path, which: str
) -> None:
    install_tiny(plugin_dir, tmp_path)
    installed = plugin_dir / "plugins" / f"tiny-test.{which}"
    if which == "toml":
        # Lowering a threshold on disk is exactly the change that must not pass silently.
        installed.write_text(installed.read_text().replace('"0.001" = 0.9', '"0.001" = 0.1'))
    else:
        write_tiny_model(installed, seed=8)
    with pytest.raises(ModelUnavailableError, match="does not match the SHA-256"):
        load_recognizer(plugin_dir, "tiny-test")
    assert list_plugins(plugin_dir)[0].status is ModelStatus.TAMPERED


def test_a_manifest_that_does_not_describe_the_model_installs_nothing(
    plugin_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelInstallError, match="manifest says 16"):
        install_tiny(plugin_dir, tmp_path, dimension=16)
    with pytest.raises(ModelInstallError, match="built-in"):
        install_tiny(plugin_dir, tmp_path, key="sface-2021dec")
    not_onnx = tmp_path / "not.onnx"
    not_onnx.write_bytes(b"\x08\x01 garbage")
    manifest = tmp_path / "m.toml"
    manifest.write_text(tiny_manifest(), encoding="utf-8")
    with pytest.raises(ModelInstallError, match="does not work as its manifest describes"):
        install_onnx_model(plugin_dir, not_onnx, manifest)
    assert not (plugin_dir / "plugins" / "tiny-test.onnx").exists()
    assert list_plugins(plugin_dir) == []
    with pytest.raises(ModelUnavailableError, match="models install --onnx"):
        load_recognizer(plugin_dir, "tiny-test")


@pytest.mark.lfw
@pytest.mark.parametrize("runtime", ["onnxruntime", "opencv"])
def test_the_engine_runs_a_plug_in_with_its_own_alignment_and_records_its_key(
    plugin_dir: Path, tmp_path: Path, lfw_dir: Path, runtime: str
) -> None:
    install_tiny(plugin_dir, tmp_path, runtime=runtime)
    engine = FaceEngine.from_model_dir(plugin_dir, EngineSettings(recognizer="tiny-test"))
    photo = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    analysis = engine.analyse(photo)
    assert analysis.template.model == "tiny-test+flip"
    assert analysis.template.vector.shape == (TINY_DIMENSION,)
    assert analysis.quality.acceptable  # quality is still judged on the standard crop
    reference = engine.analyse_reference(photo)
    assert reference.template.vector.shape == (TINY_DIMENSION,)
    assert engine.calibration.gallery_threshold(1e-3) == 0.9


def test_models_install_onnx_on_the_command_line(
    plugin_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write_tiny_model(tmp_path / "tiny.onnx")
    manifest = tmp_path / "tiny.toml"
    manifest.write_text(tiny_manifest(), encoding="utf-8")
    args = ["models", "install", "--model-dir", str(plugin_dir)]
    assert main([*args, "--onnx", str(model)]) == 2
    assert "--onnx and --manifest go together" in capsys.readouterr().err
    assert main([*args, "--onnx", str(model), "--manifest", str(manifest)]) == 0
    assert "ENTRYEXIT_RECOGNIZER=tiny-test" in capsys.readouterr().out
    assert main(["models", "list", "--model-dir", str(plugin_dir)]) == 0
    assert "tiny-test" in capsys.readouterr().out


@pytest.mark.lfw
def test_switching_models_re_enrols_instead_of_mixing_template_spaces(
    plugin_dir: Path, tmp_path: Path, lfw_dir: Path
) -> None:
    install_tiny(plugin_dir, tmp_path)
    settings = Settings(
        data_dir=tmp_path / "data", model_dir=plugin_dir, dev_mode=True, engine_workers=1
    )
    keys = EphemeralKeyProvider()
    photo = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    document = DocumentKey("XYZ", "N0")

    sface = build_services(settings, keys=keys)
    flight = sface.flights.create(
        NewFlight(
            "EE",
            "1",
            datetime.now(UTC) + timedelta(hours=3),
            "AAA",
            "BBB",
            Direction.EXIT,
        )
    )
    sface.flights.put_manifest(flight.id, [traveler("N0")])
    sface.enrolment.enrol(document, photo, PhotoSource.PASSPORT)
    assert sface.galleries.stage(flight.id).with_photo == 1

    plugin_settings = settings.model_copy(update={"recognizer": "tiny-test"})
    plugin = build_services(plugin_settings, keys=keys)
    assert plugin.engine.model == "tiny-test+flip"
    # The SFace template is not used by the new model: the traveler needs a photo again.
    report = plugin.galleries.stage(flight.id)
    assert report.with_photo == 0
    assert report.without_photo == (document,)
    plugin.enrolment.enrol(document, photo, PhotoSource.PASSPORT)
    assert plugin.galleries.stage(flight.id).with_photo == 1
    assert operating_thresholds(plugin_settings, plugin.engine).calibration is not None
