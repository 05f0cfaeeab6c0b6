"""Embed many image files with the face engine, in parallel batches, with progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics import FaceAnalysis, FaceEngine
from entryexit.errors import BiometricError

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class EmbeddedSet:
    """Templates of ``paths`` row by row; rows of images that failed to enrol are zero and
    flagged in ``enrolled`` (never compared as if they were real templates)."""

    paths: tuple[Path, ...]
    vectors: NDArray[np.float32]
    enrolled: NDArray[np.bool_]
    failure_reasons: dict[Path, str]

    @property
    def failure_to_enrol(self) -> int:
        return int((~self.enrolled).sum())


def embed_files(
    engine: FaceEngine,
    paths: Sequence[Path],
    threads: int = 1,
    batch_size: int = 16,
    on_progress: ProgressCallback | None = None,
) -> EmbeddedSet:
    vectors = np.zeros((len(paths), engine.dimension), dtype=np.float32)
    enrolled = np.zeros(len(paths), dtype=bool)
    failures: dict[Path, str] = {}
    batches = [
        list(range(i, min(i + batch_size, len(paths)))) for i in range(0, len(paths), batch_size)
    ]

    def run(indices: list[int]) -> tuple[list[int], list[FaceAnalysis | BiometricError]]:
        return indices, engine.analyse_many([paths[i].read_bytes() for i in indices])

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for indices, outcomes in pool.map(run, batches):
            for index, outcome in zip(indices, outcomes, strict=True):
                if isinstance(outcome, FaceAnalysis):
                    vectors[index] = outcome.template.vector
                    enrolled[index] = True
                else:
                    failures[paths[index]] = outcome.message
            if on_progress is not None:
                on_progress(len(indices))
    return EmbeddedSet(tuple(paths), vectors, enrolled, failures)
