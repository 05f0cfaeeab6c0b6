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

    def gallery_threshold(
        self, point: OperatingPoint, frames: int = 1, references: int | None = None
    ) -> float:
        """The 1:N threshold for a probe fused from ``frames`` frames against an entry fused
        from ``references`` reference photos (None: whichever entry, so the strictest;
        ``Calibration.gallery_threshold`` has the rule). An explicit deployment threshold
        is a single-frame one for every entry: with it, fused probes have no threshold
        (raises)."""
        if frames == 1 and self.gallery_override is not None:
            return self.gallery_override
        if frames > 1 and self.gallery_override is not None:
            raise ConfigurationError(
                "ENTRYEXIT_GALLERY_THRESHOLD is a single-frame threshold; fused probes are"
                " not compared with it"
            )
        return self._calibrated().gallery_threshold(point.gallery_target_fpir, frames, references)

    def identification_rule(self, point: OperatingPoint, frames: int = 1) -> IdentificationRule:
        """The rule for a probe of ``frames`` frames: the strictest threshold for an entry of
        any reference count, and the calibrated counts' own thresholds."""
        by_references = []
        if self.gallery_override is None and self.calibration is not None:
            for references in range(1, max(self.calibration.gallery_by_references, default=0) + 1):
                by_references.append(self.gallery_threshold(point, frames, references))
        return IdentificationRule(
            self.gallery_threshold(point, frames), self.ambiguity_margin, tuple(by_references)
        )

    def gallery_thresholds_by_frames(self, point: OperatingPoint, frames: int) -> dict[int, float]:
        """Thresholds for 1..``frames`` fused frames, as far as they are calibrated."""
        found = {}
        for count in range(1, frames + 1):
            try:
                found[count] = self.gallery_threshold(point, count)
            except ConfigurationError:
                break
        return found

    def fusable_frames(self, point: OperatingPoint, wanted: int) -> int:
        """How many frames a probe may fuse, up to ``wanted``: the largest count whose
        threshold, and every smaller count's, is calibrated (a burst whose frames partly fail
        the gate fuses fewer). At least 1: the best frame alone."""
        return max(1, len(self.gallery_thresholds_by_frames(point, wanted)))

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
