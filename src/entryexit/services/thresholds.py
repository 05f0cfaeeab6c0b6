"""Which thresholds apply: the policy names target error rates, the recognizer's calibration
turns them into thresholds, and an explicit deployment setting overrides both."""

from __future__ import annotations

from dataclasses import dataclass

from entryexit.biometrics.recognizer import Calibration
from entryexit.domain.identification import IdentificationRule
from entryexit.domain.policy import OperatingPoint
from entryexit.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class OperatingThresholds:
    calibration: Calibration | None
    ambiguity_margin: float
    gallery_override: float | None = None
    verification_override: float | None = None

    def gallery_threshold(self, point: OperatingPoint) -> float:
        if self.gallery_override is not None:
            return self.gallery_override
        return self._calibrated().gallery_threshold(point.gallery_target_fpir)

    def identification_rule(self, point: OperatingPoint) -> IdentificationRule:
        return IdentificationRule(self.gallery_threshold(point), self.ambiguity_margin)

    def verification_threshold(self, point: OperatingPoint) -> float:
        if self.verification_override is not None:
            return self.verification_override
        calibration = self._calibrated()
        return calibration.verification_threshold(point.verification_target_far)

    def watchlist_threshold(self, point: OperatingPoint, entries: int) -> float:
        """The alert threshold for a list of ``entries``: every entry is one more chance of a
        false alert, so the threshold rises with the list (the recognizer's bands); without
        bands for this model, the 1:N threshold."""
        if self.gallery_override is not None or self.calibration is None:
            return self.gallery_threshold(point)
        if not self.calibration.watchlist:
            return self.gallery_threshold(point)
        return self.calibration.watchlist_threshold(point.gallery_target_fpir, max(entries, 1))

    def check(self, point: OperatingPoint) -> None:
        """Raise now, not at the first traveler, if ``point`` cannot be put into force."""
        self.gallery_threshold(point)
        self.verification_threshold(point)

    def _calibrated(self) -> Calibration:
        if self.calibration is None:
            raise ConfigurationError(
                "the policy sets target error rates, but the recognizer has no"
                " calibration for this recipe: set ENTRYEXIT_GALLERY_THRESHOLD and"
                " ENTRYEXIT_MATCH_THRESHOLD, or install a calibrated model"
            )
        return self.calibration
