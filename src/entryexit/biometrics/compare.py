"""Templates and their comparison.

``similarity_matrix`` follows the enroll/probe vocabulary of biometric toolkits: N probes
against M references give an N x M matrix of cosine similarities; one pair is the 1 x 1 case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from entryexit.errors import BiometricError, IncompatibleTemplatesError

_EPSILON = 1e-12


def l2_normalise(vectors: NDArray[np.floating]) -> NDArray[np.float32]:
    """Scale each row to unit length; a zero or non-finite row is an error, never a 0.0."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[np.newaxis, :]
    if not np.all(np.isfinite(matrix)):
        raise BiometricError("a feature vector contains non-finite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if np.any(norms < _EPSILON):
        raise BiometricError("a feature vector has zero length and cannot be normalised")
    return np.asarray(matrix / norms, dtype=np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """A unit-length feature vector and the model (registry key) that produced it."""

    vector: NDArray[np.float32]
    model: str

    def to_bytes(self) -> bytes:
        return np.asarray(self.vector, dtype="<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, model: str, dimension: int) -> Template:
        if len(data) != dimension * 4:
            raise BiometricError(
                f"a stored {model} template has {len(data)} bytes, expected {dimension * 4}"
            )
        vector = np.frombuffer(data, dtype="<f4").astype(np.float32)
        return cls(vector=l2_normalise(vector)[0], model=model)


def similarity_matrix(
    probes: NDArray[np.floating], references: NDArray[np.floating]
) -> NDArray[np.float32]:
    """Cosine similarity of every probe (rows) with every reference (columns).

    Inputs must already be L2-normalised (templates always are); the result is clipped to
    [-1, 1] against rounding.
    """
    probe_matrix = np.atleast_2d(np.asarray(probes, dtype=np.float32))
    reference_matrix = np.atleast_2d(np.asarray(references, dtype=np.float32))
    if probe_matrix.shape[1] != reference_matrix.shape[1]:
        raise IncompatibleTemplatesError(
            f"cannot compare {probe_matrix.shape[1]}-D with {reference_matrix.shape[1]}-D vectors"
        )
    scores = probe_matrix @ reference_matrix.T
    return np.asarray(np.clip(scores, -1.0, 1.0), dtype=np.float32)


def stack_templates(templates: Sequence[Template]) -> tuple[NDArray[np.float32], str]:
    """Stack templates of one model into a matrix; mixing models is refused."""
    if not templates:
        raise BiometricError("no templates to stack")
    models = {t.model for t in templates}
    if len(models) != 1:
        raise IncompatibleTemplatesError(
            f"templates of different models cannot be compared: {', '.join(sorted(models))}"
        )
    return np.stack([t.vector for t in templates]).astype(np.float32), models.pop()


def compare_templates(
    probes: Sequence[Template], references: Sequence[Template]
) -> NDArray[np.float32]:
    probe_matrix, probe_model = stack_templates(probes)
    reference_matrix, reference_model = stack_templates(references)
    if probe_model != reference_model:
        raise IncompatibleTemplatesError(
            f"templates of different models cannot be compared: {probe_model} vs {reference_model}"
        )
    return similarity_matrix(probe_matrix, reference_matrix)
