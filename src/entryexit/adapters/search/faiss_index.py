"""Watchlist search: exact (a matrix product) up to :data:`EXACT_LIMIT` entries, a faiss HNSW
graph above.

Measured (``benchmarks/bench_watchlist.py``, 2 cores): exact search takes 1.3 ms a capture at
100,000 entries and 16 ms at 1,000,000, with every hit found. Approximate indexes do badly on
face templates at the operating threshold: a traveler's mate scores 0.5-0.8, a weak
neighbour in 128 dimensions, so HNSW found 99.7% of them at 100,000 entries (efSearch 256,
0.6 ms) but only 87% at 1,000,000 (efSearch 512, 2.2 ms), and an inverted-file index needed
most of its cells. A missed watchlist hit is the costly error, so exact search is kept up to
two million entries (1 GB of templates), where it still costs about 30 ms; the graph is for
lists beyond that, with its recall to be measured on the deployment's own list. Vectors are
stored flat in both, so the score of a hit is exact and an alert never rests on an
approximated score.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

EXACT_LIMIT = 2_000_000
# Candidates fetched per probe; an alert needs only the entries above the threshold, which
# at any realistic operating point are a handful.
CANDIDATES = 32


class ExactIndex:
    def __init__(self, matrix: NDArray[np.float32]) -> None:
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)

    def __len__(self) -> int:
        return int(self._matrix.shape[0])

    def search(self, probes: NDArray[np.float32], threshold: float) -> list[tuple[int, int, float]]:
        if len(self) == 0:
            return []
        scores = probes @ self._matrix.T
        rows, columns = np.nonzero(scores >= threshold)
        return [(int(r), int(c), float(scores[r, c])) for r, c in zip(rows, columns, strict=True)]


class HnswIndex:
    """faiss ``IndexHNSWFlat`` (inner product): a graph walked from the probe towards its
    neighbours. ``ef_search`` is how wide the walk is; mates of a face lie at cosine 0.5 to 0.8,
    weak neighbours in 128-D, so it must be wide (benchmarks/bench_watchlist.py)."""

    def __init__(
        self, matrix: NDArray[np.float32], ef_search: int = 256, neighbours: int = 32
    ) -> None:
        import faiss

        data = np.ascontiguousarray(matrix, dtype=np.float32)
        self._index = faiss.IndexHNSWFlat(data.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = 80
        self._index.add(data)
        self._index.hnsw.efSearch = ef_search
        self._count = int(data.shape[0])

    def __len__(self) -> int:
        return self._count

    @property
    def ef_search(self) -> int:
        return int(self._index.hnsw.efSearch)

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._index.hnsw.efSearch = value

    def search(self, probes: NDArray[np.float32], threshold: float) -> list[tuple[int, int, float]]:
        scores, ids = self._index.search(np.ascontiguousarray(probes, dtype=np.float32), CANDIDATES)
        return [
            (int(r), int(ids[r, k]), float(scores[r, k]))
            for r in range(scores.shape[0])
            for k in range(scores.shape[1])
            if ids[r, k] >= 0 and scores[r, k] >= threshold
        ]


def build_index(matrix: NDArray[np.float32]) -> ExactIndex | HnswIndex:
    """Exact search for lists up to :data:`EXACT_LIMIT`, the HNSW index above."""
    if matrix.shape[0] <= EXACT_LIMIT:
        return ExactIndex(matrix)
    return HnswIndex(matrix)
