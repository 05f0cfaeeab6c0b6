from __future__ import annotations

import numpy as np
import pytest

from entryexit.errors import DatasetError
from entryexit.evaluation.watchlist import (
    empirical_threshold,
    fit_pareto_tail,
    fmr_for_fpir,
    fpir_from_fmr,
    watchlist_bands,
)


def test_fpir_and_fmr_invert_each_other_and_fmr_is_about_fpir_over_n() -> None:
    for entries in (1, 300, 10**6):
        fmr = fmr_for_fpir(1e-3, entries)
        assert float(fpir_from_fmr(fmr, entries)) == pytest.approx(1e-3, rel=1e-9)
    assert fmr_for_fpir(1e-3, 10**6) == pytest.approx(1e-9, rel=1e-3)
    with pytest.raises(DatasetError):
        fmr_for_fpir(0.0, 10)


def test_the_pareto_tail_of_exponential_scores_extrapolates_their_quantile() -> None:
    scores = np.random.default_rng(0).exponential(0.05, size=1_000_000)
    tail = fit_pareto_tail(scores, tail_fraction=1e-2)
    assert abs(tail.shape) < 0.1
    expected = -0.05 * np.log(1e-6)  # far beyond the 1e-2 tail the fit saw
    assert tail.threshold(1e-6) == pytest.approx(expected, rel=0.08)
    assert tail.fmr(tail.threshold(1e-5)) == pytest.approx(1e-5, rel=1e-6)
    with pytest.raises(DatasetError):
        tail.threshold(0.5)


def test_empirical_thresholds_exist_only_where_the_data_hold_enough_errors() -> None:
    scores = np.arange(1000, dtype=np.float64)
    assert empirical_threshold(scores, 0.05) == pytest.approx(950, abs=1)
    assert empirical_threshold(scores, 0.005) is None


def test_bands_rise_with_the_list_size_and_carry_an_interval() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(0.0, 0.1, size=400_000)
    probe = rng.integers(0, 500, size=scores.size)
    entry = rng.integers(0, 500, size=scores.size)
    bands = watchlist_bands(scores, probe, entry, (1, 100, 10_000), 1e-2, rng, 1e-2, 30)
    thresholds = [band.threshold for band in bands]
    assert thresholds == sorted(thresholds)
    for band in bands:
        assert band.low <= band.threshold + 1e-9
        assert band.threshold <= band.high + 1e-9
    assert bands[0].empirical_threshold is not None
    assert bands[-1].empirical_threshold is None
