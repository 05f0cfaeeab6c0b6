"""The real fingerprint engine (compiled NBIS + MCC) on real FVC2002 prints and ISO records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from entryexit.biometrics.fingerprints import (
    FingerPosition,
    FingerprintExtractor,
    FingerprintTemplate,
    MinutiaeFingerprintEngine,
    decode_fingerprint,
    open_engine,
)
from entryexit.cli import main
from entryexit.documents.iso19794_2 import parse_finger_minutiae_record
from entryexit.errors import ModelUnavailableError
from entryexit.evaluation.fingerprints import template_from_record
from tests.conftest import REPO_ROOT, installed_model_dir_path

FVC = REPO_ROOT.parent / "shared" / "data" / "fvc2002-b"


@pytest.fixture(scope="module")
def fp_engine() -> MinutiaeFingerprintEngine:
    path = installed_model_dir_path()
    try:
        return open_engine(path)
    except ModelUnavailableError as exc:
        # Not a skip: ./scripts/install always compiles it, so its absence is a fault.
        pytest.fail(f"fingerprint engine not installed in {path} ({exc}); run ./scripts/install")


@pytest.fixture(scope="module")
def fvc() -> Path:
    if not (FVC / "DB1_B" / "101_1.tif").is_file():
        pytest.skip(
            f"fvc2002-b data set not found at {FVC} (it lives beside the project in shared/)"
        )
    return FVC


def image_template(
    engine: MinutiaeFingerprintEngine, fvc: Path, db: str, name: str, ppi: float = 500
) -> FingerprintTemplate:
    image = decode_fingerprint((fvc / db / f"{name}.tif").read_bytes(), ppi)
    return engine.extract(image, FingerPosition.RIGHT_INDEX)


def test_mated_prints_outscore_strangers_and_survive_serialisation(
    fp_engine: MinutiaeFingerprintEngine, fvc: Path
) -> None:
    probe = image_template(fp_engine, fvc, "DB1_B", "101_1")
    mate = image_template(fp_engine, fvc, "DB1_B", "101_2")
    stranger = image_template(fp_engine, fvc, "DB1_B", "102_1")
    mated, other = fp_engine.compare(probe, [mate, stranger])
    assert mated > 0.4 > other
    restored = FingerprintTemplate.from_bytes(probe.to_bytes())
    assert restored.finger is FingerPosition.RIGHT_INDEX
    assert fp_engine.compare(restored, [mate])[0] == pytest.approx(mated, abs=1e-9)
    detail = fp_engine.scores(probe, mate)
    assert detail.bozorth is not None
    assert detail.bozorth > 0
    assert 0 < detail.mcc <= 1


def test_the_leader_profile_matches_mates_with_mcc_alone(fvc: Path) -> None:
    try:
        engine = open_engine(installed_model_dir_path(), FingerprintExtractor.LEADER)
    except ModelUnavailableError as exc:
        pytest.fail(f"fingerprint engine not installed ({exc}); run ./scripts/install")
    assert engine.key == "leader-mcc-v1"
    probe = image_template(engine, fvc, "DB1_B", "101_1")
    mated, other = engine.compare(
        probe,
        [
            image_template(engine, fvc, "DB1_B", "101_2"),
            image_template(engine, fvc, "DB1_B", "102_1"),
        ],
    )
    assert mated > other
    assert engine.scores(probe, probe).bozorth is None


def test_a_569_ppi_sensor_is_resampled_and_matched(
    fp_engine: MinutiaeFingerprintEngine, fvc: Path
) -> None:
    a = image_template(fp_engine, fvc, "DB2_B", "103_1", ppi=569)
    b = image_template(fp_engine, fvc, "DB2_B", "103_4", ppi=569)
    c = image_template(fp_engine, fvc, "DB2_B", "104_1", ppi=569)
    assert a.height == round(560 * 500 / 569)
    mated, other = fp_engine.compare(a, [b, c])
    assert mated > other


def test_quality_of_a_real_print(fp_engine: MinutiaeFingerprintEngine, fvc: Path) -> None:
    image = decode_fingerprint((fvc / "DB1_B" / "101_1.tif").read_bytes(), 500)
    quality = fp_engine.assess(image)
    assert quality.acceptable, quality
    assert 0 < quality.score <= 100
    assert quality.minutiae >= 12


def test_iso_records_match_their_own_finger(
    fp_engine: MinutiaeFingerprintEngine, fvc: Path
) -> None:
    def record(name: str) -> FingerprintTemplate:
        parsed = parse_finger_minutiae_record(
            (fvc / "iso19794-2" / "DB1_B" / f"{name}.iso").read_bytes()
        )
        return template_from_record(fp_engine, parsed, 0, FingerPosition.RIGHT_INDEX)

    probe = record("101_1")
    mated, other = fp_engine.compare(probe, [record("101_2"), record("102_1")])
    assert mated > other
    assert probe.width == 300  # 197 px/cm is 500 ppi: coordinates are kept as stated


@pytest.mark.slow
def test_evaluate_fingerprints_writes_summary_scores_and_plot(
    fvc: Path, fp_engine: MinutiaeFingerprintEngine, tmp_path: Path
) -> None:
    del fp_engine  # the command opens its own; the fixture fails early when it is missing
    for kind, source, suffix in (
        ("images", fvc / "DB1_B", "tif"),
        ("iso", fvc / "iso19794-2" / "DB1_B", "iso"),
    ):
        data = tmp_path / kind / "DB1_B"
        data.mkdir(parents=True)
        for finger in (101, 102, 103, 104):
            for impression in (1, 2, 3):
                name = f"{finger}_{impression}.{suffix}"
                (data / name).symlink_to(source / name)
        out = tmp_path / f"out-{kind}"
        assert (
            main(["evaluate", "fingerprints", "--data", str(data.parent), "--out", str(out)]) == 0
        )
        summary = json.loads((out / "summary.json").read_text())
        assert summary["kind"] == ("images" if kind == "images" else "iso19794-2")
        database = summary["databases"][0]
        assert database["fused"]["genuine"] == 12
        assert database["fused"]["impostor"] == 54
        assert database["two_finger_mean"]["genuine"] == 6
        assert summary["average"]["fused"]["eer"] <= 0.25
        lines = (out / "scores.txt").read_text().splitlines()
        assert len(lines) == 66
        assert all(len(line.split()) == 4 for line in lines)
        assert (out / "det.png").read_bytes()[:4] == b"\x89PNG"


def test_the_fused_leader_graph_computes_what_the_exported_one_does(fvc: Path) -> None:
    import onnxruntime as ort

    from entryexit.biometrics.fingerprints import verified_leader
    from entryexit.biometrics.fingerprints._leader_graph import fused_leader_model

    model = verified_leader()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    exported = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    fused = ort.InferenceSession(
        fused_leader_model(model.read_bytes()), options, providers=["CPUExecutionProvider"]
    )
    pixels = decode_fingerprint((fvc / "DB3_B" / "101_1.tif").read_bytes(), 500).pixels
    canvas = np.full((320, 320), float(pixels[0, 0]), dtype=np.float32)
    canvas[10:310, 10:310] = pixels
    batch = {"input": canvas[np.newaxis, :, :, np.newaxis]}
    want, got = exported.run(None, batch)[0][0], fused.run(None, batch)[0][0]
    assert want.shape == got.shape
    # Heat map, type and detection score (the direction channel wraps at +-pi).
    for channel in (0, 2, 3):
        np.testing.assert_allclose(got[..., channel], want[..., channel], atol=5e-3)
    assert (got[..., 3] >= 0.55).sum() == pytest.approx((want[..., 3] >= 0.55).sum(), abs=2)


def test_the_fast_leader_profile_finds_the_exported_profiles_minutiae(fvc: Path) -> None:
    try:
        exported = open_engine(installed_model_dir_path(), FingerprintExtractor.LEADER)
        fast = open_engine(installed_model_dir_path(), FingerprintExtractor.LEADER_FAST)
    except ModelUnavailableError as exc:
        pytest.fail(f"fingerprint engine not installed ({exc}); run ./scripts/install")
    assert fast.key == "leader-mcc-v2"
    # DB1_B's prints sit in a wide blank frame: the crop is far from the image's corner.
    image = decode_fingerprint((fvc / "DB1_B" / "103_2.tif").read_bytes(), 500)
    want, got = exported.minutiae(image), fast.minutiae(image)
    assert want.shape[0] >= 20
    distance = np.hypot(got[:, None, 0] - want[None, :, 0], got[:, None, 1] - want[None, :, 1]).min(
        axis=1
    )
    # Same places in the full image's frame (the crop's offset is added back).
    assert (distance <= 2.0).mean() >= 0.9
    assert abs(got.shape[0] - want.shape[0]) <= 0.1 * want.shape[0]


def test_one_read_gives_the_quality_and_template_bytes_of_assess_then_extract(
    fp_engine: MinutiaeFingerprintEngine, fvc: Path
) -> None:
    """The service reads a print once (probe M5: mindtct ran twice); what it enrols and
    compares must not change: the same quality and byte-identical templates, on prints of
    both FVC2002 sensors in this set, and a blank one is refused the same way."""
    for db, name in (
        ("DB1_B", "101_1"),
        ("DB1_B", "105_2"),
        ("DB2_B", "103_1"),
        ("DB2_B", "110_8"),
    ):
        image = decode_fingerprint((fvc / db / f"{name}.tif").read_bytes(), 500)
        quality, template = fp_engine.read(image, FingerPosition.LEFT_INDEX)
        assessed = fp_engine.assess(image)
        assert quality == assessed
        assert template is not None
        extracted = fp_engine.extract(image, FingerPosition.LEFT_INDEX, assessed.score)
        assert template.to_bytes() == extracted.to_bytes()
    blank = decode_fingerprint(_white_png(), 500)
    quality, template = fp_engine.read(blank, FingerPosition.LEFT_INDEX)
    assert (quality, template) == (fp_engine.assess(blank), None)
    assert not quality.acceptable


def _white_png() -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.full((400, 400), 255, dtype=np.uint8))
    assert ok
    return bytes(data.tobytes())


def test_an_iso_view_of_255_minutiae_keeps_its_120_most_reliable(
    fp_engine: MinutiaeFingerprintEngine,
) -> None:
    """Probe s9 FP1: ISO/IEC 19794-2 views of 255 random minutiae were taken whole (real
    plain prints have 30-80), and each comparison then cost ~0.45 s of CPU. A view keeps
    its MAX_VIEW_MINUTIAE most reliable minutiae, in the record's order."""
    from entryexit.biometrics.fingerprints._engine import MAX_VIEW_MINUTIAE

    rng = np.random.default_rng(7)
    count = 255
    quality = rng.permutation(np.arange(1, count + 1) * 100 // count)  # 0..100, reported
    rows = np.stack(
        [
            rng.integers(0, 800, count),
            rng.integers(0, 800, count),
            rng.integers(0, 256, count),
            rng.integers(1, 3, count),
            quality,
        ],
        axis=1,
    ).astype(np.float64)
    view = fp_engine.from_iso_minutiae(rows, (800, 800, 500.0, 500.0), FingerPosition.UNKNOWN)
    assert MAX_VIEW_MINUTIAE == 120
    assert len(view.minutiae) == MAX_VIEW_MINUTIAE
    kept = np.sort(np.argsort(-quality, kind="stable")[:MAX_VIEW_MINUTIAE])
    assert np.allclose(view.minutiae[:, :2], rows[kept, :2])
    assert view.minutiae[:, 4].min() >= np.sort(quality)[-MAX_VIEW_MINUTIAE] / 100.0
    # A real record is left whole.
    small = fp_engine.from_iso_minutiae(rows[:60], (800, 800, 500.0, 500.0), FingerPosition.UNKNOWN)
    assert len(small.minutiae) == 60
