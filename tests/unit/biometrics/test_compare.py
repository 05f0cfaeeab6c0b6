from __future__ import annotations

import numpy as np
import pytest

from entryexit.biometrics.compare import (
    Template,
    compare_templates,
    l2_normalise,
    similarity_matrix,
)
from entryexit.errors import BiometricError, IncompatibleTemplatesError


def unit_vectors(count: int, dimension: int = 8, seed: int = 0) -> np.ndarray:
    return l2_normalise(np.random.default_rng(seed).normal(size=(count, dimension)))


def test_matrix_is_n_by_m_cosine_similarity() -> None:
    probes, references = unit_vectors(3), unit_vectors(5, seed=1)
    scores = similarity_matrix(probes, references)
    assert scores.shape == (3, 5)
    expected = np.array(
        [
            [float(p @ r) / (np.linalg.norm(p) * np.linalg.norm(r)) for r in references]
            for p in probes
        ]
    )
    np.testing.assert_allclose(scores, expected, atol=1e-6)


def test_one_pair_is_the_one_by_one_case_and_self_similarity_is_one() -> None:
    vector = unit_vectors(1)[0]
    scores = similarity_matrix(vector, vector)
    assert scores.shape == (1, 1)
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert similarity_matrix(vector, -vector)[0, 0] == pytest.approx(-1.0, abs=1e-6)


def test_dimension_mismatch_is_refused() -> None:
    with pytest.raises(IncompatibleTemplatesError):
        similarity_matrix(unit_vectors(1, 8), unit_vectors(1, 4))


def test_templates_of_different_models_are_never_compared() -> None:
    a = Template(unit_vectors(1)[0], model="sface-2021dec")
    b = Template(unit_vectors(1, seed=2)[0], model="other-model")
    with pytest.raises(IncompatibleTemplatesError, match="different models"):
        compare_templates([a], [b])
    with pytest.raises(IncompatibleTemplatesError):
        compare_templates([a, b], [a])


def test_zero_or_non_finite_vectors_are_errors_not_zero_scores() -> None:
    with pytest.raises(BiometricError, match="zero length"):
        l2_normalise(np.zeros(8))
    with pytest.raises(BiometricError, match="non-finite"):
        l2_normalise(np.array([1.0, np.nan]))


def test_template_bytes_round_trip() -> None:
    template = Template(unit_vectors(1, 128)[0], model="sface-2021dec")
    restored = Template.from_bytes(template.to_bytes(), "sface-2021dec", 128)
    np.testing.assert_array_equal(restored.vector, template.vector)
    with pytest.raises(BiometricError, match="expected 512"):
        Template.from_bytes(template.to_bytes()[:-4], "sface-2021dec", 128)
