from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from entryexit.biometrics.compare import l2_normalise
from entryexit.errors import DatasetError
from entryexit.evaluation.gallery import GalleryRun, run_draw


def constructed() -> tuple[np.ndarray, dict[int, list[int]]]:
    """Ten persons, orthogonal identities; each has a reference and one capture near it,
    except person 9's capture, which looks like person 0 (a mated miss)."""
    dimension = 16
    vectors, images_of = [], {}
    for person in range(10):
        base = np.eye(dimension)[person]
        images_of[person] = [len(vectors), len(vectors) + 1]
        vectors.append(base)
        wrong = np.eye(dimension)[0] if person == 9 else base
        vectors.append(wrong * 0.9 + np.eye(dimension)[15] * 0.1)
    return l2_normalise(np.array(vectors)), images_of


def test_a_draw_counts_rank1_misses_and_thresholds_on_non_mated_scores() -> None:
    vectors, images_of = constructed()
    run = GalleryRun(Path(), Path(), gallery_size=10, draws=1, operating_threshold=0.5)
    with pytest.raises(DatasetError):  # everyone on the flight: no non-mated capture
        run_draw(vectors, images_of, list(images_of), np.random.default_rng(0), run)
    run = GalleryRun(Path(), Path(), gallery_size=8, draws=1, operating_threshold=0.5)
    result, lines = run_draw(vectors, images_of, list(images_of), np.random.default_rng(0), run)
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
