from __future__ import annotations

import numpy as np

from entryexit.adapters.search.faiss_index import EXACT_LIMIT, ExactIndex, HnswIndex, build_index
from entryexit.biometrics.compare import l2_normalise


def test_the_graph_index_finds_what_exact_search_finds_with_exact_scores() -> None:
    rng = np.random.default_rng(3)
    entries = l2_normalise(rng.normal(size=(2_000, 32)))
    # Probes near a few entries (cosine about 0.8), and one far from everything.
    targets = [5, 700, 1999]
    probes = l2_normalise(
        np.vstack(
            [entries[t] + 0.6 * l2_normalise(rng.normal(size=(1, 32)))[0] for t in targets]
            + [rng.normal(size=32)]
        )
    )
    exact = ExactIndex(entries).search(probes, 0.6)
    graph = HnswIndex(entries, ef_search=128).search(probes, 0.6)
    assert {(r, c) for r, c, _ in exact} >= {(0, 5), (1, 700), (2, 1999)}
    assert {(r, c) for r, c, _ in graph} == {(r, c) for r, c, _ in exact}
    scores = {(r, c): s for r, c, s in exact}
    for r, c, s in graph:
        assert abs(scores[(r, c)] - s) < 1e-5
    assert len(ExactIndex(np.empty((0, 32), np.float32)).search(probes, 0.6)) == 0


def test_small_lists_are_searched_exactly() -> None:
    entries = l2_normalise(np.random.default_rng(1).normal(size=(10, 8)))
    assert isinstance(build_index(entries), ExactIndex)
    assert EXACT_LIMIT >= 1_000_000  # exact search was measured at 16 ms for 10^6 entries
