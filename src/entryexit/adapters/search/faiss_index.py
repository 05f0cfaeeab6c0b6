"""A graph index (faiss HNSW, inner product) for watchlists too large to search exactly on
every capture.

Exact search is a matrix product and is used up to :data:`EXACT_LIMIT` entries; above it the
HNSW graph. Its vectors are stored flat, so the score of what it finds is exact and an alert
never rests on an approximated score; what it can do is miss an entry, which
``benchmarks/bench_watchlist.py`` measures as recall against exact search at the operating
threshold (an inverted-file index was measured too and needed most of its cells for 99%).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

EXACT_LIMIT = 100_000
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
