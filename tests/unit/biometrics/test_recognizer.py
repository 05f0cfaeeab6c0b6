from __future__ import annotations

from pathlib import Path

import pytest

from entryexit.biometrics.embed import SFACE_MANIFEST
from entryexit.biometrics.recognizer import Calibration, parse_recognizer_manifest
from entryexit.domain.policy import DEFAULT_OPERATING_POINT, OperatingPoint
from entryexit.errors import ConfigurationError, ModelInstallError
from entryexit.services.thresholds import OperatingThresholds
from tests.onnx_builder import TINY_DIMENSION, tiny_manifest


def test_a_valid_manifest_is_read_with_its_calibration() -> None:
    manifest = parse_recognizer_manifest(tiny_manifest())
    assert manifest.key == "tiny-test"
    assert (manifest.input_width, manifest.input_height, manifest.colour) == (32, 32, "BGR")
    assert manifest.dimension == TINY_DIMENSION
    assert not manifest.uses_standard_alignment
    calibration = manifest.calibration("flip")
    assert calibration.gallery_threshold(1e-3) == 0.9
    assert calibration.verification_threshold(0.001) == 0.8
    with pytest.raises(ConfigurationError, match=r"calibrated: 0\.001"):
        calibration.gallery_threshold(1e-2)
    with pytest.raises(ConfigurationError, match="no calibration for the 'plain' recipe"):
        manifest.calibration("plain")


def test_sface_is_described_like_a_plug_in_with_the_standard_alignment() -> None:
    assert SFACE_MANIFEST.uses_standard_alignment
    assert SFACE_MANIFEST.calibration("flip").gallery_threshold(1e-3) > 0.4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('key = "tiny-test"', 'key = "Tiny Test!"'), "'key'"),
        (("width = 32", "width = 8"), "16 to 1024"),
        (('colour = "BGR"', 'colour = "YUV"'), "RGB or BGR"),
        (("std = [127.5, 127.5, 127.5]", "std = [1, 0, 1]"), "must not be 0"),
        (("std = [127.5, 127.5, 127.5]", "std = [1, 1]"), "three numbers"),
        (("landmarks = [", "landmarks = [[1, 2], "), "five"),
        (('similarity = "cosine"', 'similarity = "euclidean"'), "cosine"),
        (('runtime = "onnxruntime"', 'runtime = "tensorrt"'), "runtime"),
        (('"0.001" = 0.9', '"0.001" = 1.9'), "threshold in"),
        (('"0.001" = 0.9', '"often" = 0.9'), "not a rate"),
        (("[calibration.flip]", "[calibration.mirror]"), "calibration tables"),
        (("[output]", "[outputs]"), "'output' is missing"),
    ],
)
def test_manifest_errors_name_the_field(change: tuple[str, str], message: str) -> None:
    text = tiny_manifest().replace(*change, 1)
    with pytest.raises(ModelInstallError, match=message):
        parse_recognizer_manifest(text)


def test_not_toml_is_refused() -> None:
    with pytest.raises(ModelInstallError, match="not valid TOML"):
        parse_recognizer_manifest("key = ")


CALIBRATION = Calibration(
    gallery={1e-2: 0.44, 1e-3: 0.49}, verification={1e-3: 0.36}, gallery_size=300, source="t"
)


def test_the_policy_target_picks_the_calibrated_threshold_and_a_setting_overrides_it() -> None:
    thresholds = OperatingThresholds(CALIBRATION, ambiguity_margin=0.03)
    assert thresholds.gallery_threshold(DEFAULT_OPERATING_POINT) == 0.49
    assert thresholds.gallery_threshold(OperatingPoint(gallery_target_fpir=0.01)) == 0.44
    assert thresholds.verification_threshold(DEFAULT_OPERATING_POINT) == 0.36
    assert thresholds.identification_rule(DEFAULT_OPERATING_POINT).ambiguity_margin == 0.03
    overridden = OperatingThresholds(
        CALIBRATION, 0.03, gallery_override=0.5, verification_override=0.3
    )
    assert overridden.gallery_threshold(DEFAULT_OPERATING_POINT) == 0.5
    assert overridden.verification_threshold(DEFAULT_OPERATING_POINT) == 0.3
    with pytest.raises(ConfigurationError, match=r"calibrated: 0\.001"):
        thresholds.check(OperatingPoint(verification_target_far=1e-4))


def test_without_a_calibration_only_explicit_thresholds_work() -> None:
    with pytest.raises(ConfigurationError, match="ENTRYEXIT_GALLERY_THRESHOLD"):
        OperatingThresholds(None, 0.03).check(DEFAULT_OPERATING_POINT)
    OperatingThresholds(None, 0.03, 0.5, 0.4).check(DEFAULT_OPERATING_POINT)


WATCHLIST_TABLE = """
[calibration.flip.watchlist_fpir."0.001"]
"1000" = 0.55
"100000" = 0.62
"300" = 0.5
"""


def test_watchlist_bands_are_read_and_the_smallest_band_holding_the_list_is_chosen() -> None:
    manifest = parse_recognizer_manifest(tiny_manifest() + WATCHLIST_TABLE)
    calibration = manifest.calibration("flip")
    assert calibration.watchlist_threshold(1e-3, 1) == 0.5
    assert calibration.watchlist_threshold(1e-3, 300) == 0.5
    assert calibration.watchlist_threshold(1e-3, 301) == 0.55
    assert calibration.watchlist_threshold(1e-3, 100_000) == 0.62
    with pytest.raises(ConfigurationError, match="larger than the largest calibrated band"):
        calibration.watchlist_threshold(1e-3, 100_001)
    with pytest.raises(ConfigurationError, match=r"no watchlist thresholds for target FPIR 0\.01"):
        calibration.watchlist_threshold(1e-2, 10)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[calibration.flip.watchlist_fpir."0.001"]\n"many" = 0.5\n', "not a number of entries"),
        ('[calibration.flip.watchlist_fpir."0.001"]\n"10" = 1.5\n', "outside"),
        ('[calibration.flip.watchlist_fpir."2"]\n"10" = 0.5\n', "rates lie in"),
    ],
)
def test_watchlist_band_errors_name_the_field(table: str, message: str) -> None:
    with pytest.raises(ModelInstallError, match=message):
        parse_recognizer_manifest(tiny_manifest() + "\n" + table)


def test_the_shipped_sface_calibration_has_watchlist_bands_that_rise_with_the_list() -> None:
    calibration = SFACE_MANIFEST.calibration("flip")
    bands = calibration.watchlist[1e-3]
    thresholds = [band.threshold for band in sorted(bands, key=lambda b: b.max_entries)]
    assert thresholds == sorted(thresholds)
    assert calibration.watchlist_threshold(1e-3, 300) >= calibration.gallery_threshold(1e-3) - 0.05


FRAMES_TABLE = """
[calibration.flip.gallery_fpir_by_frames."2"]
"0.001" = 0.93
[calibration.flip.gallery_fpir_by_frames."3"]
"0.001" = 0.95
"""


def test_fused_probes_get_the_threshold_of_their_frame_count_and_never_the_single_one() -> None:
    calibration = parse_recognizer_manifest(tiny_manifest() + FRAMES_TABLE).calibration("flip")
    assert calibration.gallery_threshold(1e-3) == calibration.gallery_threshold(1e-3, 1) == 0.9
    assert calibration.gallery_threshold(1e-3, 2) == 0.93
    assert calibration.gallery_threshold(1e-3, 3) == 0.95
    with pytest.raises(ConfigurationError, match="fused from 4 frames"):
        calibration.gallery_threshold(1e-3, 4)
    with pytest.raises(ConfigurationError, match=r"calibrated: 0\.001"):
        calibration.gallery_threshold(1e-2, 2)


def test_a_probe_fuses_only_as_many_frames_as_have_a_threshold() -> None:
    only_two = Calibration(
        gallery={1e-3: 0.49},
        verification={1e-3: 0.36},
        gallery_size=300,
        source="t",
        gallery_by_frames={2: {1e-3: 0.5}, 4: {1e-3: 0.52}},
    )
    thresholds = OperatingThresholds(only_two, 0.03)
    point = DEFAULT_OPERATING_POINT
    # 3 is not calibrated, so 4 is out of reach too: the counts must run without a gap.
    assert thresholds.gallery_thresholds_by_frames(point, 5) == {1: 0.49, 2: 0.5}
    assert thresholds.fusable_frames(point, 5) == 2
    assert thresholds.fusable_frames(point, 1) == 1
    assert thresholds.identification_rule(point, 2).threshold == 0.5
    assert OperatingThresholds(CALIBRATION, 0.03).fusable_frames(point, 3) == 1


def test_an_explicit_gallery_threshold_is_a_single_frame_one() -> None:
    with_frames = Calibration(
        gallery={1e-3: 0.49},
        verification={1e-3: 0.36},
        gallery_size=300,
        source="t",
        gallery_by_frames={2: {1e-3: 0.5}},
    )
    overridden = OperatingThresholds(with_frames, 0.03, gallery_override=0.6)
    assert overridden.gallery_threshold(DEFAULT_OPERATING_POINT) == 0.6
    with pytest.raises(ConfigurationError, match="single-frame"):
        overridden.gallery_threshold(DEFAULT_OPERATING_POINT, 2)
    assert overridden.fusable_frames(DEFAULT_OPERATING_POINT, 3) == 1


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[calibration.flip.gallery_fpir_by_frames."1"]\n"0.001" = 0.5\n', "frame count"),
        ('[calibration.flip.gallery_fpir_by_frames."many"]\n"0.001" = 0.5\n', "frame count"),
        ('[calibration.flip.gallery_fpir_by_frames."2"]\n"0.001" = 1.5\n', "threshold in"),
    ],
)
def test_frame_count_table_errors_name_the_field(table: str, message: str) -> None:
    with pytest.raises(ModelInstallError, match=message):
        parse_recognizer_manifest(tiny_manifest() + "\n" + table)


def test_the_shipped_sface_calibration_has_its_own_threshold_for_fused_probes() -> None:
    calibration = SFACE_MANIFEST.calibration("flip")
    single = calibration.gallery_threshold(1e-3)
    thresholds = OperatingThresholds(calibration, 0.03)
    assert thresholds.fusable_frames(DEFAULT_OPERATING_POINT, 3) == 3
    for frames in (2, 3):
        # Fused probes' non-mated scores sit higher: their thresholds are stricter.
        assert calibration.gallery_threshold(1e-3, frames) > single
    # Only FPIR 1e-3 is calibrated for fused probes; at 1e-2 a burst decides on one frame.
    assert thresholds.fusable_frames(OperatingPoint(gallery_target_fpir=0.01), 3) == 1
    assert SFACE_MANIFEST.calibration("plain").gallery_by_frames == {}


REFERENCES_TABLE = """
[calibration.flip.gallery_fpir_by_references]
"1" = { "0.001" = 0.86 }
"2" = { "0.001" = 0.88, "0.01" = 0.8 }
"""


def test_each_reference_count_gets_its_own_threshold_and_other_counts_the_strictest() -> None:
    calibration = parse_recognizer_manifest(tiny_manifest() + REFERENCES_TABLE).calibration("flip")
    assert calibration.gallery_by_references == {1: {1e-3: 0.86}, 2: {1e-3: 0.88, 1e-2: 0.8}}
    assert calibration.gallery_threshold(1e-3, references=1) == 0.86
    assert calibration.gallery_threshold(1e-3, references=2) == 0.88
    # Three references were never measured: the strictest of every table (here `gallery`).
    assert calibration.gallery_threshold(1e-3, references=3) == 0.9
    assert calibration.gallery_threshold(1e-3) == 0.9


def test_an_uncalibrated_reference_count_is_never_laxer_than_a_calibrated_one() -> None:
    # A fallback below a calibrated count's threshold would hold entries with more
    # references (whose impostor scores run higher) to a laxer threshold.
    calibration = Calibration(
        gallery={1e-3: 0.49},
        verification={1e-3: 0.36},
        gallery_size=300,
        source="t",
        gallery_by_references={1: {1e-3: 0.48}, 2: {1e-3: 0.51}},
    )
    assert calibration.gallery_threshold(1e-3, references=3) == 0.51
    assert calibration.gallery_threshold(1e-3) == 0.51
    assert calibration.gallery_threshold(1e-3, references=1) == 0.48


def test_fused_probes_keep_their_frame_count_threshold_whatever_the_reference_count() -> None:
    calibration = parse_recognizer_manifest(
        tiny_manifest() + REFERENCES_TABLE + FRAMES_TABLE
    ).calibration("flip")
    for references in (None, 1, 2, 3):
        assert calibration.gallery_threshold(1e-3, 2, references) == 0.93
    rule = OperatingThresholds(calibration, 0.03).identification_rule(DEFAULT_OPERATING_POINT, 2)
    assert rule.threshold_for(1) == rule.threshold_for(2) == rule.threshold == 0.93


def test_the_identification_rule_carries_each_reference_count_threshold() -> None:
    calibration = parse_recognizer_manifest(tiny_manifest() + REFERENCES_TABLE).calibration("flip")
    rule = OperatingThresholds(calibration, 0.03).identification_rule(DEFAULT_OPERATING_POINT)
    assert rule.thresholds_by_references == (0.86, 0.88)
    assert (rule.threshold_for(1), rule.threshold_for(2), rule.threshold_for(5)) == (
        0.86,
        0.88,
        0.9,
    )
    # An explicit deployment threshold is one threshold for every entry.
    overridden = OperatingThresholds(calibration, 0.03, gallery_override=0.7)
    rule = overridden.identification_rule(DEFAULT_OPERATING_POINT)
    assert (rule.threshold_for(1), rule.threshold_for(2)) == (0.7, 0.7)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[calibration.flip.gallery_fpir_by_references."0"]\n"0.001" = 0.5\n', "reference count"),
        ('[calibration.flip.gallery_fpir_by_references."x"]\n"0.001" = 0.5\n', "reference count"),
        ('[calibration.flip.gallery_fpir_by_references."1"]\n"0.001" = 2\n', "threshold in"),
    ],
)
def test_reference_count_table_errors_name_the_field(table: str, message: str) -> None:
    with pytest.raises(ModelInstallError, match=message):
        parse_recognizer_manifest(tiny_manifest() + "\n" + table)


def test_the_shipped_sface_1_to_n_thresholds_are_those_of_the_recorded_calibration_run() -> None:
    recorded = Path(__file__).parents[3] / "benchmarks" / "calibration-sface-flip.toml"
    manifest = tiny_manifest().split("[calibration")[0] + recorded.read_text(encoding="utf-8")
    calibration = parse_recognizer_manifest(manifest).calibration("flip")
    shipped = SFACE_MANIFEST.calibration("flip")
    assert calibration.gallery == shipped.gallery
    assert calibration.gallery_by_references == shipped.gallery_by_references
    for references in (1, 2, 3):
        assert shipped.gallery_threshold(1e-3, references=references) == (
            calibration.gallery_threshold(1e-3, references=references)
        )
