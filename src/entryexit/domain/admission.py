"""Admissions and overstays: pure rules over dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class ExitLink(StrEnum):
    """How an exit was tied to the stay it closes."""

    DOCUMENT = "document"
    BIOMETRIC = "biometric"


@dataclass(frozen=True, slots=True)
class AdmissionRules:
    """From the policy: the class given when the arrival record names none, how long each
    class may stay when no end date is given, and the grace before an overstay is reported."""

    default_class: str = "WT"
    days_by_class: tuple[tuple[str, int], ...] = (("WT", 90), ("B1", 180), ("B2", 180))
    grace_days: int = 0

    def admitted_until(
        self, admission_class: str, admitted_on: date, given: date | None = None
    ) -> date | None:
        """The given end date, else the class's default period; None: no fixed end (for
        example duration of status)."""
        if given is not None:
            return given
        days = dict(self.days_by_class).get(admission_class)
        return None if days is None else admitted_on + timedelta(days=days)


@dataclass(frozen=True, slots=True)
class Admission:
    id: str
    traveler_id: str | None
    admission_class: str
    admitted_on: date | None
    admitted_until: date | None
    entry_flight_id: str | None
    exit_flight_id: str | None
    exited_on: date | None
    link: ExitLink | None
    link_score: float | None

    @property
    def open(self) -> bool:
        return self.admitted_on is not None and self.exited_on is None

    @property
    def exit_without_entry(self) -> bool:
        return self.admitted_on is None


def days_over(admission: Admission, as_of: date) -> int:
    """Days beyond the admitted-until date: by the exit date if the traveler left, else by
    ``as_of``; 0 when within the stay or when the stay has no fixed end."""
    if admission.admitted_until is None:
        return 0
    end = admission.exited_on or as_of
    return max(0, (end - admission.admitted_until).days)


def is_in_country_overstay(admission: Admission, as_of: date, grace_days: int) -> bool:
    return admission.open and days_over(admission, as_of) > grace_days


def is_out_of_country_overstay(admission: Admission) -> bool:
    return (
        admission.exited_on is not None
        and not admission.exit_without_entry
        and (days_over(admission, admission.exited_on) > 0)
    )
