"""The role matrix for the kiosk permissions (the API's endpoints are walked role by role in
tests/integration/api/test_errors_and_roles.py; kiosk and console routes check these)."""

from __future__ import annotations

import pytest

from entryexit.domain.access import (
    CROSS_CARRIER_PERMISSIONS,
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    Role,
)

KIOSK_MATRIX = {
    Role.ADMIN: {Permission.KIOSK_MANAGE, Permission.KIOSK_REQUESTS},
    Role.SUPERVISOR: {Permission.KIOSK_MANAGE, Permission.KIOSK_REQUESTS},
    Role.OFFICER: {Permission.KIOSK_REQUESTS},
    Role.AUDITOR: set(),
    Role.WATCHLIST_MANAGER: set(),
    Role.GATE: set(),
    Role.MONITOR: set(),
}


@pytest.mark.parametrize("role", list(Role))
def test_who_pairs_kiosks_and_who_sees_their_requests(role: Role) -> None:
    kiosk = {Permission.KIOSK_MANAGE, Permission.KIOSK_REQUESTS}
    assert ROLE_PERMISSIONS[role] & kiosk == KIOSK_MATRIX[role]


def test_a_gate_and_so_a_paired_kiosk_submits_and_records_and_reads_nothing() -> None:
    assert ROLE_PERMISSIONS[Role.GATE] == {
        Permission.CAPTURE_SUBMIT,
        Permission.OPT_OUT_RECORD,
        Permission.VERIFY,
    }


# What a key bound to a carrier keeps, role by role: only what acts on one flight (checked
# against the flight's carrier) or names no carrier (the policy). The API walk with bound keys
# is tests/integration/api/test_errors_and_roles.py.
FLIGHT_SCOPED_OR_NEUTRAL = {
    Permission.FLIGHT_CREATE,
    Permission.FLIGHT_READ,
    Permission.MANIFEST_WRITE,
    Permission.GALLERY_STAGE,
    Permission.CAPTURE_SUBMIT,
    Permission.ENCOUNTER_READ,
    Permission.OPT_OUT_RECORD,
    Permission.POLICY_READ,
    Permission.VERIFY,
    Permission.DECISION_DETAILS,
}


def test_every_permission_is_either_flight_scoped_or_cross_carrier() -> None:
    assert set(Permission) - CROSS_CARRIER_PERMISSIONS == FLIGHT_SCOPED_OR_NEUTRAL


@pytest.mark.parametrize("role", list(Role))
def test_a_carrier_bound_key_keeps_only_what_acts_on_its_carriers_flights(role: Role) -> None:
    bound = Principal("k", "carrier staff", role, carrier="ZZ")
    unbound = Principal("k", "agency staff", role)
    assert {p for p in Permission if bound.can(p)} == (
        ROLE_PERMISSIONS[role] & FLIGHT_SCOPED_OR_NEUTRAL
    )
    if role is not Role.GATE:
        assert {p for p in Permission if unbound.can(p)} == ROLE_PERMISSIONS[role]


# The live prints kept on a case: the roles that take prints on a case, and nobody else (the
# service further limits each print to the officer who took it).
CASE_PRINTS_ROLES = {Role.ADMIN, Role.SUPERVISOR, Role.OFFICER}


@pytest.mark.parametrize("role", list(Role))
def test_who_may_see_the_prints_kept_on_a_case(role: Role) -> None:
    allowed = Permission.CASE_PRINTS_VIEW in ROLE_PERMISSIONS[role]
    assert allowed is (role in CASE_PRINTS_ROLES)
    # Those who see kept prints are those who take them.
    assert allowed is (Permission.FINGERPRINT_VERIFY in ROLE_PERMISSIONS[role])
    # A key bound to a carrier never (kept prints are cross-carrier biometric data).
    assert not Principal("k", "k", role, carrier="EE").can(Permission.CASE_PRINTS_VIEW)


# Replacing an enrolled finger: a supervisor's (and the admin's) step, never an officer's, and
# never a carrier-bound key's.
REENROL_ROLES = {Role.ADMIN, Role.SUPERVISOR}


@pytest.mark.parametrize("role", list(Role))
def test_who_may_replace_enrolled_prints(role: Role) -> None:
    assert (Permission.FINGERPRINT_REENROL in ROLE_PERMISSIONS[role]) is (role in REENROL_ROLES)
    assert not Principal("k", "k", role, carrier="EE").can(Permission.FINGERPRINT_REENROL)


# The agency's review of manifest conflicts between carriers: admins and supervisors (never a
# carrier-bound key: it spans every carrier).
MANIFEST_CONFLICT_ROLES = {Role.ADMIN, Role.SUPERVISOR}


@pytest.mark.parametrize("role", list(Role))
def test_who_reviews_manifest_conflicts(role: Role) -> None:
    allowed = Permission.MANIFEST_CONFLICTS in ROLE_PERMISSIONS[role]
    assert allowed == (role in MANIFEST_CONFLICT_ROLES)
    assert not Principal("k", "carrier staff", role, carrier="ZZ").can(
        Permission.MANIFEST_CONFLICTS
    )
