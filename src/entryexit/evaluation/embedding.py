"""Embed many image files with the face engine, in parallel batches, with progress.

Embedding a data set is the slow part of every evaluation, so results can be cached in a file
keyed by the model, the recipe and the exact list of files (names, sizes and a hash of their
bytes): a second run with other flights or thresholds reuses them, a changed file set never
does, and a data set merely touched or copied (new modification times, same bytes) still does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics import FaceAnalysis, FaceEngine
from entryexit.biometrics.engine import RECIPE_REVISION
from entryexit.errors import BiometricError

ProgressCallback = Callable[[int], None]

CAPTURE_RECIPE = "capture"
REFERENCE_RECIPE = "reference"


@dataclass(frozen=True, slots=True)
class EmbeddedSet:
    """Templates of ``paths`` row by row; rows of images that failed to enrol are zero and
    flagged in ``enrolled`` (never compared as if they were real templates). ``acceptable``
    says whether the service's quality gate would have taken the image (False where it would
    ask for a recapture)."""

    paths: tuple[Path, ...]
    vectors: NDArray[np.float32]
    enrolled: NDArray[np.bool_]
    acceptable: NDArray[np.bool_]
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
    recipe: str = CAPTURE_RECIPE,
) -> EmbeddedSet:
    """Templates of ``paths`` with the capture recipe or the richer reference recipe (the
    one the service uses for enrolled reference photos)."""
    vectors = np.zeros((len(paths), engine.dimension), dtype=np.float32)
    enrolled = np.zeros(len(paths), dtype=bool)
    acceptable = np.zeros(len(paths), dtype=bool)
    failures: dict[Path, str] = {}
    batches = [
        list(range(i, min(i + batch_size, len(paths)))) for i in range(0, len(paths), batch_size)
    ]

    def run(indices: list[int]) -> tuple[list[int], list[FaceAnalysis | BiometricError]]:
        images = [paths[i].read_bytes() for i in indices]
        if recipe == REFERENCE_RECIPE:
            return indices, engine.analyse_references(images)
        return indices, engine.analyse_many(images)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for indices, outcomes in pool.map(run, batches):
            for index, outcome in zip(indices, outcomes, strict=True):
                if isinstance(outcome, FaceAnalysis):
                    vectors[index] = outcome.template.vector
                    enrolled[index] = True
                    acceptable[index] = outcome.quality.acceptable
                else:
                    failures[paths[index]] = outcome.message
            if on_progress is not None:
                on_progress(len(indices))
    return EmbeddedSet(tuple(paths), vectors, enrolled, acceptable, failures)


def cache_key(engine: FaceEngine, paths: Sequence[Path], recipe: str) -> str:
    digest = hashlib.sha256(f"{engine.model}\n{recipe}\n{RECIPE_REVISION}\n".encode())
    if recipe == CAPTURE_RECIPE:
        # Detection settings change a capture's template (references are always detected
        # the same way).
        digest.update(f"{engine.settings.capture_recipe_signature}\n".encode())
    add_file_contents(digest, paths)
    return digest.hexdigest()


def add_file_contents(digest: hashlib._Hash, paths: Sequence[Path]) -> None:
    """Add each file's name, size and contents (a fast hash of its bytes) to ``digest``:
    what a cache of their templates is valid for, whatever their modification times."""
    for path in paths:
        content = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
        digest.update(f"{path}\t{path.stat().st_size}\t{content}\n".encode())


def embed_files_cached(
    engine: FaceEngine,
    paths: Sequence[Path],
    cache_dir: Path | None,
    threads: int = 1,
    on_progress: ProgressCallback | None = None,
    recipe: str = CAPTURE_RECIPE,
) -> EmbeddedSet:
    """:func:`embed_files`, reusing ``cache_dir/embeddings-<key>.npz`` when it exists."""
    if cache_dir is None:
        return embed_files(engine, paths, threads, on_progress=on_progress, recipe=recipe)
    cache_file = cache_dir / f"embeddings-{cache_key(engine, paths, recipe)[:24]}.npz"
    if cache_file.is_file():
        with np.load(cache_file) as cached:
            if on_progress is not None:
                on_progress(len(paths))
            enrolled = cached["enrolled"]
            return EmbeddedSet(
                tuple(paths),
                cached["vectors"],
                enrolled,
                cached["acceptable"],
                {
                    path: "failed to enrol"
                    for path, ok in zip(paths, enrolled, strict=True)
                    if not ok
                },
            )
    embedded = embed_files(engine, paths, threads, on_progress=on_progress, recipe=recipe)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(".partial.npz")
    np.savez(
        partial,
        vectors=embedded.vectors,
        enrolled=embedded.enrolled,
        acceptable=embedded.acceptable,
    )
    partial.replace(cache_file)
    return embedded


def with_reference_rows(
    engine: FaceEngine,
    paths: Sequence[Path],
    vectors: NDArray[np.float32],
    rows: Sequence[int],
    cache_dir: Path | None,
    threads: int = 1,
    on_progress: ProgressCallback | None = None,
) -> NDArray[np.float32]:
    """A copy of ``vectors`` whose ``rows`` (the images that serve as enrolled references) are
    embedded again with the reference recipe, as the service enrols them."""
    chosen = sorted(rows)
    enrolled = embed_files_cached(
        engine, [paths[i] for i in chosen], cache_dir, threads, on_progress, REFERENCE_RECIPE
    )
    result = vectors.copy()
    result[chosen] = enrolled.vectors
    return result
