"""Roles and what each may do: the one table every entrypoint enforces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from entryexit.errors import PermissionDeniedError


class Role(StrEnum):
    ADMIN = "admin"
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    WATCHLIST_MANAGER = "watchlist_manager"
    GATE = "gate"
    AUDITOR = "auditor"
    MONITOR = "monitor"


class Permission(StrEnum):
    FLIGHT_CREATE = "flight:create"
    FLIGHT_READ = "flight:read"
    MANIFEST_WRITE = "manifest:write"
    # Review what carriers' manifests said of documents another carrier set first, and
    # apply one side (the agency's: first carrier wins until it decides).
    MANIFEST_CONFLICTS = "manifest:conflicts"
    PHOTO_ENROL = "photo:enrol"
    GALLERY_STAGE = "gallery:stage"
    CAPTURE_SUBMIT = "capture:submit"
    ENCOUNTER_READ = "encounter:read"
    AUDIT_READ = "audit:read"
    OPT_OUT_RECORD = "opt-out:record"
    POLICY_READ = "policy:read"
    PRIVACY_REPORT = "privacy:report"
    VERIFY = "verification:run"
    CASE_RESOLVE = "case:resolve"
    IMAGE_VIEW = "image:view"
    CROSSINGS_READ = "crossings:read"
    ADMISSION_WRITE = "admission:write"
    OVERSTAY_REPORT = "overstays:report"
    WATCHLIST_MANAGE = "watchlist:manage"
    ALERT_READ = "alert:read"
    ALERT_DISPOSITION = "alert:disposition"
    # Erase every record of one traveler (a court order, a mistaken enrolment).
    TRAVELER_ERASE = "traveler:erase"
    # Scores, traveler references and thresholds of a decision (partners see the decision).
    DECISION_DETAILS = "decision:details"
    # Fingerprints are an officer-side step: a gate asking for prints would reveal why.
    FINGERPRINT_ENROL = "fingerprint:enrol"
    # Replacing a finger already enrolled: a supervisor's step with a reason, never silent.
    FINGERPRINT_REENROL = "fingerprint:re-enrol"
    FINGERPRINT_VERIFY = "fingerprint:verify"
    # See the live prints one took on a case (images and the paired minutiae drawn over
    # them); the service further limits it to the officer who took them.
    CASE_PRINTS_VIEW = "fingerprint:case-prints"
    # Prometheus metrics: counts and timings, no personal data.
    METRICS_READ = "metrics:read"
    # Pair and revoke self-service kiosks, and say which flight each lane is boarding.
    KIOSK_MANAGE = "kiosk:manage"
    # See and close the anonymous opt-out requests travelers made at a kiosk.
    KIOSK_REQUESTS = "kiosk:requests"


# What an officer at a desk may do (people and machines alike).
_OFFICER = frozenset(
    {
        Permission.FLIGHT_CREATE,
        Permission.FLIGHT_READ,
        Permission.MANIFEST_WRITE,
        Permission.PHOTO_ENROL,
        Permission.GALLERY_STAGE,
        Permission.CAPTURE_SUBMIT,
        Permission.ENCOUNTER_READ,
        Permission.OPT_OUT_RECORD,
        Permission.POLICY_READ,
        Permission.VERIFY,
        Permission.CASE_RESOLVE,
        Permission.IMAGE_VIEW,
        Permission.CROSSINGS_READ,
        Permission.ADMISSION_WRITE,
        Permission.OVERSTAY_REPORT,
        Permission.ALERT_READ,
        Permission.ALERT_DISPOSITION,
        Permission.DECISION_DETAILS,
        Permission.FINGERPRINT_ENROL,
        Permission.FINGERPRINT_VERIFY,
        Permission.CASE_PRINTS_VIEW,
        Permission.KIOSK_REQUESTS,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OFFICER: _OFFICER,
    # Runs a shift: everything an officer does, plus the audit trail, the privacy report,
    # the manifest conflicts between carriers, erasing a traveler (an auditor checks
    # erasures, and so may not make them) and the shift's kiosks (pairing, revoking, lanes).
    Role.SUPERVISOR: _OFFICER
    | {
        Permission.MANIFEST_CONFLICTS,
        Permission.AUDIT_READ,
        Permission.PRIVACY_REPORT,
        Permission.TRAVELER_ERASE,
        Permission.KIOSK_MANAGE,
        Permission.FINGERPRINT_REENROL,
    },
    # Keeps the watchlist; sees neither travelers nor alerts (separation of duties).
    Role.WATCHLIST_MANAGER: frozenset({Permission.WATCHLIST_MANAGE}),
    # A partner's camera or gate agent, or a paired self-service kiosk: submits captures,
    # records a traveler's opt-out, and learns the decision; nothing can be read back.
    Role.GATE: frozenset({Permission.CAPTURE_SUBMIT, Permission.OPT_OUT_RECORD, Permission.VERIFY}),
    # A monitoring system's scrape key: the metrics and nothing else.
    Role.MONITOR: frozenset({Permission.METRICS_READ}),
    Role.AUDITOR: frozenset(
        {
            Permission.FLIGHT_READ,
            Permission.ENCOUNTER_READ,
            Permission.AUDIT_READ,
            Permission.POLICY_READ,
            Permission.PRIVACY_REPORT,
        }
    ),
}


# A key bound to a carrier (every gate key and kiosk, and any agency key issued to a carrier's
# staff) acts on that carrier's flights only. These permissions act on data that belongs to no
# one flight: enrolled documents and prints of every traveler, crossings and stays, alerts and
# the watchlist, the audit trail, reports and metrics across carriers, erasure and kiosks. A
# bound key never has them, whatever its role; docs/access.md says why, endpoint by endpoint.
CROSS_CARRIER_PERMISSIONS: frozenset[Permission] = frozenset(
    {
        Permission.PHOTO_ENROL,
        Permission.FINGERPRINT_ENROL,
        Permission.FINGERPRINT_REENROL,
        Permission.FINGERPRINT_VERIFY,
        Permission.CROSSINGS_READ,
        Permission.ADMISSION_WRITE,
        Permission.OVERSTAY_REPORT,
        Permission.ALERT_READ,
        Permission.ALERT_DISPOSITION,
        Permission.WATCHLIST_MANAGE,
        Permission.AUDIT_READ,
        Permission.PRIVACY_REPORT,
        Permission.METRICS_READ,
        Permission.TRAVELER_ERASE,
        Permission.KIOSK_MANAGE,
        Permission.KIOSK_REQUESTS,
        Permission.CASE_RESOLVE,
        Permission.IMAGE_VIEW,
        Permission.CASE_PRINTS_VIEW,
        Permission.MANIFEST_CONFLICTS,
    }
)


def allows(role: Role, permission: Permission, carrier: str | None = None) -> bool:
    if carrier is not None and permission in CROSS_CARRIER_PERMISSIONS:
        return False
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key's identity, role and (for gates) the carrier it serves."""

    key_id: str
    name: str
    role: Role
    carrier: str | None = None

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission, self.carrier)

    def require(self, permission: Permission) -> None:
        """Raise :class:`PermissionDeniedError` unless this role has ``permission``."""
        if not self.can(permission):
            raise PermissionDeniedError(f"the {self.role.value} role may not do this")

    def serves(self, carrier: str) -> bool:
        """A key bound to a carrier acts only for that carrier's flights (a gate key always is
        bound); an unbound agency key acts for every flight."""
        if self.role is Role.GATE or self.carrier is not None:
            return self.carrier == carrier
        return True


@dataclass(frozen=True, slots=True)
class StoredApiKey:
    principal: Principal
    prefix: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
