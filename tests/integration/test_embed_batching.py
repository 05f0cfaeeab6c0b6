"""Micro-batched embeddings with the real models: the same templates as one capture alone."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from entryexit.biometrics import EngineSettings, FaceEngine
from tests.conftest import lfw_image

pytestmark = [pytest.mark.models, pytest.mark.lfw]

PHOTOS = [("Colin_Powell", 1), ("Colin_Powell", 2), ("Ariel_Sharon", 1), ("Donald_Rumsfeld", 1)]


def test_a_batched_template_equals_the_one_embedded_alone(
    engine: FaceEngine, model_dir: Path, lfw_dir: Path
) -> None:
    # A generous wait, so that captures started together surely share passes.
    batched = FaceEngine.from_model_dir(
        model_dir, EngineSettings(workers=2, embed_batch_wait_ms=500.0)
    )
    images = [lfw_image(lfw_dir, person, number).read_bytes() for person, number in PHOTOS]
    alone = [engine.analyse(data).template.vector for data in images]
    together: list[np.ndarray | None] = [None] * len(images)
    start = threading.Barrier(len(images))

    def capture(index: int) -> None:
        start.wait()
        together[index] = batched.analyse(images[index]).template.vector

    threads = [threading.Thread(target=capture, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stats = batched.batch_stats
    assert stats is not None
    assert stats.captures == len(images)
    assert stats.shared_passes >= 1
    assert stats.passes < len(images)
    for single, shared in zip(alone, together, strict=True):
        assert shared is not None
        assert float(single @ shared) >= 0.9999
    # A template is its own capture's: never a batch neighbour's.
    first, third = together[0], together[2]
    assert first is not None
    assert third is not None
    assert float(first @ third) < 0.5


def test_micro_batching_is_off_by_default(engine: FaceEngine) -> None:
    assert engine.batch_stats is None
