"""The evaluation's embedding cache is keyed by the files' contents: a data set touched or
copied (new modification times) is read back, a changed file is embedded again."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from entryexit.biometrics import FaceAnalysis, FaceEngine
from entryexit.errors import BiometricError
from entryexit.evaluation.embedding import REFERENCE_RECIPE, cache_key, embed_files_cached


class CountingEngine:
    """What the cache reads of an engine (its model, its template size), and a reference
    analysis that counts the images it is given (it finds no face in any)."""

    model = "test-model"
    dimension = 4

    def __init__(self) -> None:
        self.analysed = 0

    def analyse_references(self, images: Sequence[bytes]) -> list[FaceAnalysis | BiometricError]:
        self.analysed += len(images)
        return [BiometricError("no face") for _ in images]


def _photos(tmp_path: Path) -> list[Path]:
    paths = []
    for name in ("a.jpg", "b.jpg"):
        path = tmp_path / "set" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"image bytes of {name}".encode())
        paths.append(path)
    return paths


def _key(paths: list[Path]) -> str:
    return cache_key(cast(FaceEngine, CountingEngine()), paths, REFERENCE_RECIPE)


def test_touching_the_files_keeps_the_key_and_changing_one_byte_does_not(tmp_path: Path) -> None:
    paths = _photos(tmp_path)
    before = _key(paths)
    for path in paths:
        os.utime(path, (1, 1))  # a copy, a checkout, a `touch`
    assert _key(paths) == before
    same_size = paths[1].read_bytes().replace(b"b", b"c")
    paths[1].write_bytes(same_size)
    assert _key(paths) != before


def test_a_touched_data_set_is_read_from_the_cache_and_a_changed_one_embedded_again(
    tmp_path: Path,
) -> None:
    paths = _photos(tmp_path)
    counting = CountingEngine()
    engine = cast(FaceEngine, counting)
    cache = tmp_path / "cache"

    first = embed_files_cached(engine, paths, cache, recipe=REFERENCE_RECIPE)
    assert counting.analysed == 2
    for path in paths:
        os.utime(path, (1, 1))
    again = embed_files_cached(engine, paths, cache, recipe=REFERENCE_RECIPE)
    assert counting.analysed == 2  # read back
    assert again.failure_to_enrol == first.failure_to_enrol == 2

    paths[0].write_bytes(b"another photo, same name")
    embed_files_cached(engine, paths, cache, recipe=REFERENCE_RECIPE)
    assert counting.analysed == 4  # embedded again
