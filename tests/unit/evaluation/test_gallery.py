from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from entryexit.biometrics.compare import l2_normalise
from entryexit.errors import DatasetError
from entryexit.evaluation.gallery import Embeddings, GalleryRun, run_draw


def constructed() -> tuple[np.ndarray, dict[int, list[int]]]:
    """Ten persons, orthogonal identities; each has a reference and one capture near it,
    except person 9's capture, which looks like person 0 (a mated miss)."""
    dimension = 16
    vectors: list[np.ndarray] = []
    images_of: dict[int, list[int]] = {}
    for person in range(10):
        base = np.eye(dimension)[person]
        images_of[person] = [len(vectors), len(vectors) + 1]
        vectors.append(base)
        wrong = np.eye(dimension)[0] if person == 9 else base
        vectors.append(wrong * 0.9 + np.eye(dimension)[15] * 0.1)
    return l2_normalise(np.array(vectors)), images_of


def same_recipe(vectors: np.ndarray) -> Embeddings:
    return Embeddings(vectors, vectors, np.ones(len(vectors), dtype=bool))


def test_a_draw_counts_rank1_misses_and_thresholds_on_non_mated_scores() -> None:
    vectors, images_of = constructed()
    embeddings = same_recipe(vectors)
    run = GalleryRun(Path(), Path(), gallery_size=10, draws=1, operating_threshold=0.5)
    with pytest.raises(DatasetError):  # everyone on the flight: no non-mated capture
        run_draw(embeddings, images_of, list(images_of), np.random.default_rng(0), run)
    run = GalleryRun(Path(), Path(), gallery_size=8, draws=1, operating_threshold=0.5)
    result, lines = run_draw(embeddings, images_of, list(images_of), np.random.default_rng(0), run)
    assert result.cmc[-1] >= result.rank1
    assert result.at_operating is not None
    fnir, fpir = result.at_operating
    mated_count = 8  # one capture per traveler on the flight
    on_flight = {truth for _, _, truth, _ in lines[:mated_count]}
    # Non-mated captures are orthogonal to every gallery entry unless they copy person 0.
    off_flight = [person for person in range(10) if person not in on_flight]
    # Only person 9's capture (like person 0) can be a false positive, and only with 0 aboard.
    false_positives = 1 if (9 in off_flight and 0 in on_flight) else 0
    expected_fpir = false_positives / (2 * len(off_flight))
    assert fpir == pytest.approx(expected_fpir)
    expected_fnir = 1.0 / 8 if 9 in on_flight else 0.0
    assert fnir == pytest.approx(expected_fnir)
    assert result.rank1 == pytest.approx(1.0 - expected_fnir)


def whole_set(acquired_captures: int) -> tuple[Embeddings, dict[int, list[int]]]:
    """Persons 0-9 with a reference and a capture (identity e_p), person 10 with one photo
    (e_14, matching no one); the first ``acquired_captures`` captures pass the quality gate.
    In the capture-recipe rows every reference image points at e_0, so a gallery built from
    them instead of the reference rows would confuse everyone with person 0."""
    eye = np.eye(16)
    captures: list[np.ndarray] = []
    references: list[np.ndarray] = []
    acquired: list[bool] = []
    images_of: dict[int, list[int]] = {}
    for person in range(10):
        images_of[person] = [len(captures), len(captures) + 1]
        captures += [eye[0], eye[person]]
        references += [eye[person], eye[person]]
        acquired += [True, person < acquired_captures]
    images_of[10] = [len(captures)]
    captures.append(eye[14])
    references.append(eye[14])
    acquired.append(True)
    return Embeddings(
        l2_normalise(np.array(captures)), l2_normalise(np.array(references)), np.array(acquired)
    ), images_of


def test_the_gallery_is_built_from_reference_templates_and_everyone_flies_in_whole_set_mode() -> (
    None
):
    embeddings, images_of = whole_set(acquired_captures=10)
    run = GalleryRun(Path(), Path(), gallery_size=None, draws=1, operating_threshold=0.5)
    result, _ = run_draw(embeddings, images_of, list(images_of), np.random.default_rng(0), run)
    assert result.total_mated == 10
    assert result.rank1 == pytest.approx(1.0)
    assert result.at_operating == pytest.approx((0.0, 0.0))


def test_captures_refused_for_quality_count_as_misses_and_are_reported() -> None:
    embeddings, images_of = whole_set(acquired_captures=7)
    run = GalleryRun(Path(), Path(), gallery_size=None, draws=1, operating_threshold=0.5)
    result, _ = run_draw(embeddings, images_of, list(images_of), np.random.default_rng(0), run)
    assert result.mated_fta == pytest.approx(0.3)
    assert result.rank1 == pytest.approx(0.7)
    assert result.at_operating is not None
    assert result.at_operating[0] == pytest.approx(0.3)  # refused captures are not identified
