"""Rows that grant access or govern decisions, against someone who can write to the database
but holds none of the keys (a DBA, a backup operator, an attacker with the database password).

Before rows carried MACs, each attack below worked: an inserted admin key read every
manifest, a gate key promoted in place became an admin, a planted console session opened the
console, and a policy rewritten with a matching content hash loosened the operating point.
Now each forged or altered row is refused as if absent, and a tampered policy stops decisions
(503) until an administrator loads the file again. SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.biometrics import FaceEngine
from entryexit.bootstrap import build_records, build_services
from entryexit.config import Settings
from entryexit.domain.access import Principal, Role
from entryexit.errors import StoredDataUntrustedError
from entryexit.services.policies import DEFAULT_POLICY, shipped_policy_text
from entryexit.web.app import create_service_app
from tests.integration.api.conftest import Api, build_api

pytestmark = [pytest.mark.models]

PASSWORD = "a long enough password"


@pytest.fixture
def console(database_url: str, engine: FaceEngine, tmp_path: Path) -> Api:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    built, _ = build_api(settings, engine, create_service_app, "https://testserver")
    return built


def sql(api: Api, statement: str, **params: object) -> None:
    with api.services.uow.engine.begin() as connection:
        connection.execute(text(statement), params)


def scalar(api: Api, statement: str, **params: object) -> object:
    with api.services.uow.engine.connect() as connection:
        return connection.execute(text(statement), params).scalar_one()


def admin_only_read(api: Api, headers: dict[str, str]) -> int:
    status: int = api.client.get("/v1/privacy/report", headers=headers).status_code
    return status


def mint_key(api: Api, role: str, mac: str | None) -> str:
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    sql(
        api,
        "INSERT INTO api_keys (id, name, role, prefix, secret_hash, carrier, created_at, mac)"
        " VALUES (:id, 'mine', :role, :prefix, :hash, NULL, :now, :mac)",
        id=str(uuid.uuid4()),
        role=role,
        prefix=prefix,
        hash=hashlib.sha256(secret.encode()).hexdigest(),
        now=datetime.now(UTC).replace(tzinfo=None),
        mac=mac,
    )
    return f"eex_{prefix}_{secret}"


def test_an_admin_key_inserted_without_the_keys_is_refused(console: Api) -> None:
    assert admin_only_read(console, console.headers("admin")) == 200  # the read works
    for mac in (None, "0" * 64):
        forged = mint_key(console, "admin", mac)
        assert admin_only_read(console, {"X-API-Key": forged}) == 401


def test_a_key_copied_with_its_mac_onto_another_role_is_refused(console: Api) -> None:
    """The MAC binds the row's role and carrier: a gate key promoted in place, keeping its
    valid MAC, is no longer any key at all."""
    gate = {"X-API-Key": console.keys["gate"]}
    assert admin_only_read(console, gate) == 403  # a known key, not allowed this
    sql(console, "UPDATE api_keys SET role = 'admin', carrier = NULL WHERE name = 'gate EE'")
    assert admin_only_read(console, gate) == 401  # no longer a key at all
    # Moving it to another carrier instead is refused the same way.
    sql(console, "UPDATE api_keys SET role = 'gate', carrier = 'ZZ' WHERE name = 'gate EE'")
    assert admin_only_read(console, gate) == 401
    # ... and so is un-revoking a revoked key.
    other = {"X-API-Key": console.keys["gate_other_carrier"]}
    key_id = str(scalar(console, "SELECT id FROM api_keys WHERE name = 'gate ZZ'"))
    console.services.keys.revoke(key_id)
    assert admin_only_read(console, other) == 401
    sql(console, "UPDATE api_keys SET revoked_at = NULL WHERE id = :id", id=key_id)
    assert admin_only_read(console, other) == 401


def test_forged_and_revoked_keys_are_not_remembered_from_the_read_of_every_live_key(
    console: Api,
) -> None:
    """``KeyService.remember_live`` (the API's read of every live key, while an address is
    blocked for failed sign-ins) lets the keys it remembers past the early refusal without a
    read of their own: a planted row, or a revoked key, must not be among them."""
    keys = console.services.keys
    forged = [mint_key(console, "admin", mac) for mac in (None, "0" * 64)]
    key_id = str(scalar(console, "SELECT id FROM api_keys WHERE name = 'gate ZZ'"))
    keys.revoke(key_id)
    keys.remember_live()
    assert keys.remembered(console.keys["admin"]) is not None  # the read remembers real ones
    assert [keys.remembered(token) for token in forged] == [None, None]
    assert keys.remembered(console.keys["gate_other_carrier"]) is None


def console_page(api: Api, cookie: str) -> str:
    client = TestClient(api.client.app, base_url="https://testserver")
    client.cookies.set("entryexit_session", cookie, path="/console")
    path: str = client.get("/console/").url.path
    return path


def test_a_console_session_planted_in_the_database_is_refused(console: Api) -> None:
    admin = console.services.accounts.create_user("root", PASSWORD, Role.ADMIN)
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC).replace(tzinfo=None)
    sql(
        console,
        "INSERT INTO console_sessions"
        " (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, mac)"
        " VALUES (:hash, :user, 'x', :now, :now, :later, NULL)",
        hash=hashlib.sha256(token.encode()).hexdigest(),
        user=admin.id,
        now=now,
        later=now + timedelta(hours=1),
    )
    assert console_page(console, token) == "/console/login"
    # A real session opens the page (the check above is not refusing everything).
    real, _ = console.services.accounts.sign_in("root", PASSWORD)
    assert console_page(console, real) == "/console/"
    # Stretching a real session's lifetime in the database ends it.
    sql(console, "UPDATE console_sessions SET expires_at = :far", far=now + timedelta(days=365))
    assert console_page(console, real) == "/console/login"


def sign_in_path(api: Api, username: str, password: str) -> str:
    client = TestClient(api.client.app, base_url="https://testserver")
    page = client.get("/console/login")
    found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert found is not None
    response = client.post(
        "/console/login",
        data={"username": username, "password": password, "login_csrf": found.group(1)},
    )
    path: str = response.url.path
    return path


def test_console_accounts_inserted_or_promoted_in_the_database_are_refused(console: Api) -> None:
    officer = console.services.accounts.create_user("olga", PASSWORD, Role.OFFICER)
    assert sign_in_path(console, "olga", PASSWORD) == "/console/"
    sql(console, "UPDATE console_users SET role = 'admin' WHERE id = :id", id=officer.id)
    assert sign_in_path(console, "olga", PASSWORD) == "/console/login"
    # An account of the attacker's own, with a password hash the attacker made.
    hashed = scalar(
        console, "SELECT password_hash FROM console_users WHERE id = :id", id=officer.id
    )
    sql(
        console,
        "INSERT INTO console_users (id, username, password_hash, role, created_at,"
        " failed_attempts, mac) VALUES (:id, 'mallory', :hash, 'admin', :now, 0, NULL)",
        id=str(uuid.uuid4()),
        hash=hashed,
        now=datetime.now(UTC).replace(tzinfo=None),
    )
    assert sign_in_path(console, "mallory", PASSWORD) == "/console/login"


def test_a_policy_rewritten_in_the_database_stops_decisions_until_reloaded(
    console: Api, engine: FaceEngine
) -> None:
    genuine = shipped_policy_text(DEFAULT_POLICY)
    version = str(scalar(console, "SELECT version FROM policies"))
    # Citizens' photos kept for ten days instead of twelve hours.
    loosened = genuine.replace("citizen = 12\n", "citizen = 240\n")
    assert loosened != genuine
    # A careful attacker keeps the content hash consistent with the new text.
    sql(
        console,
        "UPDATE policies SET source = :source, sha256 = :hash WHERE version = :version",
        source=loosened,
        hash=hashlib.sha256(loosened.encode()).hexdigest(),
        version=version,
    )
    # The next start refuses, naming what to do; any process that reads the policy (another
    # instance, the CLI) makes no decision on it. (A running instance keeps the copy it
    # verified when it read it.)
    settings = console.services.settings
    keys = FileKeyProvider(settings.resolved_key_dir)
    with pytest.raises(StoredDataUntrustedError, match="policy load"):
        build_services(settings, engine=engine, keys=keys)
    records = build_records(settings, keys=keys)
    try:
        with pytest.raises(StoredDataUntrustedError):
            records.policies.in_force()
        if console.services.uow.engine.dialect.name == "sqlite":
            # Told that policies changed (SQLite instances read a counter; PostgreSQL's are
            # told by NOTIFY), a running instance reads it again: not ready, and why.
            sql(console, "UPDATE cache_generations SET generation = generation + 1")
            time.sleep(1.1)  # the instance looks at the counter at most once a second
            ready = console.client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["policy"] == "untrusted"
        # `entryexit policy load` with the genuine file (an audited administrator's act)
        # mends it.
        records.policies.load(genuine)
        assert records.policies.in_force().version == version
    finally:
        records.uow.engine.dispose()  # type: ignore[attr-defined]
    restarted = build_services(settings, engine=engine, keys=keys)
    try:
        client = TestClient(create_service_app(restarted))
        assert client.get("/readyz").status_code == 200
        listed = client.get("/v1/policies", headers=console.headers("admin"))
        assert listed.status_code == 200
        assert "citizen = 240" not in str(listed.json())
    finally:
        restarted.uow.engine.dispose()


def test_rows_from_before_row_macs_are_kept_only_if_the_audit_log_attests_them(
    console: Api,
) -> None:
    """Upgrading a store whose rows have no MACs yet (migration 0018): the first start with the
    keys MACs the rows the audit log's creation events attest; a row a database writer added
    before the upgrade has no such event and stays refused."""
    console.services.accounts.create_user("olga", PASSWORD, Role.OFFICER)
    session, _ = console.services.accounts.sign_in("olga", PASSWORD)
    forged = mint_key(console, "admin", None)
    _, kiosk = paired_kiosk_token(console)
    forged_kiosk = plant_kiosk(console, "EE", None)
    waiting = TestClient(console.client.app, base_url="https://testserver")
    waiting.post("/kiosk/pairing", headers={"X-Requested-With": "kiosk"})
    tables = ("api_keys", "console_users", "console_sessions", "policies", "kiosk_devices")
    for table in tables:
        sql(console, f"UPDATE {table} SET mac = NULL")  # noqa: S608 - fixed table names
    assert admin_only_read(console, console.headers("admin")) == 401  # refused until attested
    assert not kiosk_has_session(console, kiosk)

    counts = console.services.uow.mac_legacy_rows()

    assert counts["refused"] == 2  # the forged key and the planted kiosk
    assert counts["sessions_ended"] == 2  # people sign in again (olga, and root who paired)
    assert counts["kiosks_unpaired_ended"] == 1  # it shows a new code
    assert kiosk_has_session(console, kiosk)
    assert not kiosk_has_session(console, forged_kiosk)
    assert admin_only_read(console, console.headers("admin")) == 200
    assert admin_only_read(console, {"X-API-Key": forged}) == 401
    assert console_page(console, session) == "/console/login"
    assert sign_in_path(console, "olga", PASSWORD) == "/console/"
    assert console.client.get("/readyz").status_code == 200


def paired_kiosk_token(api: Api) -> tuple[str, str]:
    """A kiosk paired from the console by an administrator: (device id, session token)."""
    from tests.integration.web.test_console import fresh, sign_in
    from tests.integration.web.test_kiosk import pair, start_pairing

    if console_user_missing(api, "root"):
        api.services.accounts.create_user("root", PASSWORD, Role.ADMIN)
    admin = fresh(api)
    sign_in(admin, "root")
    kiosk = fresh(api)
    assert pair(admin, start_pairing(kiosk)) == 303
    assert kiosk.get("/kiosk/pairing").json() == {"state": "paired"}
    token = next(c.value for c in kiosk.cookies.jar if c.name == "entryexit_kiosk")
    assert token is not None
    device_id = str(
        scalar(
            api,
            "SELECT id FROM kiosk_devices WHERE token_hash = :hash",
            hash=hashlib.sha256(token.encode()).hexdigest(),
        )
    )
    return device_id, token


def console_user_missing(api: Api, username: str) -> bool:
    with api.services.uow.engine.connect() as connection:
        found = connection.execute(
            text("SELECT count(*) FROM console_users WHERE username = :name"), {"name": username}
        ).scalar_one()
    return int(found) == 0


def kiosk_has_session(api: Api, token: str) -> bool:
    """Whether the kiosk holding this cookie gets the capture screen (else: a pairing code)."""
    client = TestClient(api.client.app, base_url="https://testserver")
    client.cookies.set("entryexit_kiosk", token, path="/kiosk")
    page = client.get("/kiosk").text
    return 'id="pairing-code"' not in page


def plant_kiosk(api: Api, carrier: str, mac: str | None) -> str:
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC).replace(tzinfo=None)
    sql(
        api,
        "INSERT INTO kiosk_devices (id, token_hash, csrf_token, created_at, carrier, port, lane,"
        " paired_at, paired_by, session_issued_at, mac) VALUES (:id, :hash, 'x', :now,"
        " :carrier, 'JFK', '9', :now, :by, :now, :mac)",
        id=str(uuid.uuid4()),
        hash=hashlib.sha256(token.encode()).hexdigest(),
        now=now,
        carrier=carrier,
        by=str(uuid.uuid4()),
        mac=mac,
    )
    return token


def test_a_kiosk_planted_moved_or_unrevoked_in_the_database_is_refused(console: Api) -> None:
    """A paired kiosk acts as a gate key of its carrier: a database writer must not plant one,
    move a genuine one to another carrier or lane, or bring a revoked one back."""
    device_id, token = paired_kiosk_token(console)
    assert kiosk_has_session(console, token)  # the control: a genuine kiosk works
    for mac in (None, "0" * 64):
        assert not kiosk_has_session(console, plant_kiosk(console, "EE", mac))

    sql(console, "UPDATE kiosk_devices SET carrier = 'ZZ' WHERE id = :id", id=device_id)
    assert not kiosk_has_session(console, token)
    sql(console, "UPDATE kiosk_devices SET carrier = 'EE', lane = '7' WHERE id = :id", id=device_id)
    assert not kiosk_has_session(console, token)
    sql(console, "UPDATE kiosk_devices SET lane = '3' WHERE id = :id", id=device_id)
    assert kiosk_has_session(console, token)  # put back as it was, it verifies again
    # The console lists only the genuine kiosk.
    root = Principal("root-id", "root", Role.ADMIN)
    assert [d.id for d in console.services.kiosks.devices(root)] == [device_id]

    console.services.kiosks.revoke(root, device_id)
    assert not kiosk_has_session(console, token)
    sql(console, "UPDATE kiosk_devices SET revoked_at = NULL WHERE id = :id", id=device_id)
    assert not kiosk_has_session(console, token)


def test_a_newer_policy_deleted_in_the_database_stops_decisions_until_reloaded(
    console: Api, engine: FaceEngine
) -> None:
    """Rolling back to an older policy by deleting the newer row (every remaining row is
    genuine) is caught by the audit log, which names the newest load and the policy in force."""
    genuine = shipped_policy_text(DEFAULT_POLICY)
    # A stricter policy: citizens' photos kept six hours, not twelve.
    newer = re.sub(r'version = "[^"]+"', 'version = "stricter-9"', genuine).replace(
        "citizen = 12\n", "citizen = 6\n"
    )
    newer = newer.replace(
        "effective_from = 2026-01-01T00:00:00Z", "effective_from = 2026-06-01T00:00:00Z"
    )
    console.services.policies.load(newer)
    assert console.services.policies.in_force().version == "stricter-9"
    settings = console.services.settings
    keys = FileKeyProvider(settings.resolved_key_dir)

    def refused_everywhere() -> None:
        with pytest.raises(StoredDataUntrustedError, match="stricter-9"):
            build_services(settings, engine=engine, keys=keys)
        records = build_records(settings, keys=keys)
        try:
            with pytest.raises(StoredDataUntrustedError, match="policy load"):
                records.policies.in_force()
        finally:
            records.uow.engine.dispose()  # type: ignore[attr-defined]

    # The control: the genuine store starts.
    build_services(settings, engine=engine, keys=keys).uow.engine.dispose()
    assert console.client.get("/v1/policies", headers=console.headers("admin")).status_code == 200

    sql(console, "DELETE FROM policies WHERE version = 'stricter-9'")
    refused_everywhere()
    if console.services.uow.engine.dialect.name == "sqlite":
        sql(console, "UPDATE cache_generations SET generation = generation + 1")
        time.sleep(1.1)  # the instance looks at the counter at most once a second
        ready = console.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["policy"] == "untrusted"

    # Spoiling the load event's MAC does not hide which version was loaded last.
    sql(
        console,
        "UPDATE audit_events SET mac = :mac WHERE action = 'policy load'"
        " AND resource_id = 'stricter-9'",
        mac="0" * 64,
    )
    with pytest.raises(StoredDataUntrustedError, match="fails its MAC"):
        build_services(settings, engine=engine, keys=keys)
    # A careful attacker also deletes the load's audit event (not the last one): the newest
    # event still names the deleted policy as in force.
    sql(
        console,
        "DELETE FROM audit_events WHERE action = 'policy load' AND resource_id = 'stricter-9'",
    )
    assert (
        str(
            scalar(
                console, "SELECT policy_version FROM audit_events ORDER BY sequence DESC LIMIT 1"
            )
        )
        == "stricter-9"
    )
    refused_everywhere()

    # Loading the newer file again (an audited administrator's act) mends it.
    records = build_records(settings, keys=keys)
    try:
        records.policies.load(newer)
        assert records.policies.in_force().version == "stricter-9"
    finally:
        records.uow.engine.dispose()  # type: ignore[attr-defined]
