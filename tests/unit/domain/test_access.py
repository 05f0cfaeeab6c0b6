"""The role matrix for the kiosk permissions (the API's endpoints are walked role by role in
tests/integration/api/test_errors_and_roles.py; kiosk and console routes check these)."""

from __future__ import annotations

import pytest

from entryexit.domain.access import ROLE_PERMISSIONS, Permission, Role

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
