"""The fingerprint engine port: what services need from a fingerprint engine.

(To move to ``entryexit.services.ports`` when the services are wired.) Vocabulary as for
faces: a *template* is what is enrolled and stored (bytes, :mod:`._template`); *compare*
returns one similarity per reference, higher is more similar, on the engine's own
calibrated scale (see :data:`SCORE_SCALE` of the adapter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from entryexit.biometrics.fingerprints._decode import FingerprintImage
from entryexit.biometrics.fingerprints._quality import FingerprintQuality
from entryexit.biometrics.fingerprints._template import FingerPosition, FingerprintTemplate


@runtime_checkable
class FingerprintEngine(Protocol):
    """Quality, minutiae extraction and comparison for single-finger prints."""

    @property
    def key(self) -> str:
        """Engine name and version, recorded with every template and score."""
        ...

    def assess(self, image: FingerprintImage) -> FingerprintQuality:
        """NFIQ 2 score and recapture reasons (empty when the print is usable)."""
        ...

    def extract(
        self, image: FingerprintImage, finger: FingerPosition, quality: int = ...
    ) -> FingerprintTemplate:
        """Minutiae of a 500 ppi image; raises NoFingerprintError when too few are found."""
        ...

    def read(
        self, image: FingerprintImage, finger: FingerPosition
    ) -> tuple[FingerprintQuality, FingerprintTemplate | None]:
        """:meth:`assess`, then :meth:`extract` with its score when the print is usable (None
        when not), from one run of the extractor."""
        ...

    def from_iso_minutiae(
        self,
        minutiae: npt.NDArray[np.float64],
        frame: tuple[int, int, float, float],
        finger: FingerPosition,
        quality: int = ...,
    ) -> FingerprintTemplate:
        """A template from one finger view of an ISO/IEC 19794-2 record (vendor minutiae);
        see :func:`entryexit.evaluation.fingerprints.template_from_record`."""
        ...

    def prepare(self, template: FingerprintTemplate) -> object:
        """Build (and cache, by the template's identity) what comparing ``template`` needs,
        so that a later :meth:`compare` against it does not pay for it."""
        ...

    def compare(
        self, probe: FingerprintTemplate, references: Sequence[FingerprintTemplate]
    ) -> npt.NDArray[np.float64]:
        """One similarity per reference (the 1 x M row of Bob's N x M matrix)."""
        ...

    def paired_minutiae(
        self, probe: FingerprintTemplate, reference: FingerprintTemplate
    ) -> tuple[tuple[int, int, float], ...]:
        """The minutiae the comparison paired, as (row in ``probe``, row in ``reference``,
        the pair's strength 0..1); for display, computed apart from :meth:`compare`."""
        ...
