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


class Permission(StrEnum):
    FLIGHT_CREATE = "flight:create"
    FLIGHT_READ = "flight:read"
    MANIFEST_WRITE = "manifest:write"
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
    # Scores, traveler references and thresholds of a decision (partners see the decision).
    DECISION_DETAILS = "decision:details"
    # Fingerprints are an officer-side step: a gate asking for prints would reveal why.
    FINGERPRINT_ENROL = "fingerprint:enrol"
    FINGERPRINT_VERIFY = "fingerprint:verify"


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
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OFFICER: _OFFICER,
    # Runs a shift: everything an officer does, plus the audit trail and privacy report.
    Role.SUPERVISOR: _OFFICER | {Permission.AUDIT_READ, Permission.PRIVACY_REPORT},
    # Keeps the watchlist; sees neither travelers nor alerts (separation of duties).
    Role.WATCHLIST_MANAGER: frozenset({Permission.WATCHLIST_MANAGE}),
    # A partner's camera or gate agent: submits captures, records a traveler's opt-out, and
    # learns the decision; nothing can be read back.
    Role.GATE: frozenset({Permission.CAPTURE_SUBMIT, Permission.OPT_OUT_RECORD, Permission.VERIFY}),
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


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key's identity, role and (for gates) the carrier it serves."""

    key_id: str
    name: str
    role: Role
    carrier: str | None = None

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)

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
