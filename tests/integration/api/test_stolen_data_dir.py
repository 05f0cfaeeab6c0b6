"""The data directory alone (a backup, a stolen disk image, a copy left on a share) opens
nothing: the keys live outside it by default, the service refuses to keep them inside it, and
everything in it is readable by its owner only."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.api.app import create_app
from entryexit.biometrics import FaceEngine
from entryexit.bootstrap import build_records, build_services
from entryexit.config import Settings
from entryexit.domain.access import Role
from entryexit.errors import ConfigurationError
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, capture
from tests.integration.api.test_privacy_api import board_mixed_flight

pytestmark = [pytest.mark.models]
SECRETS = ("POWELL", "SHARON", "URIBE", "C0000001", "F0000002", "K0000003", "1970-01-01")

THIEF = """
import json, sys
from pathlib import Path
from entryexit.bootstrap import build_records
from entryexit.config import Settings
from entryexit.errors import ConfigurationError

flight_id = sys.argv[1]
outcome = {}
try:
    build_records(Settings())
    outcome["start"] = "started"
except ConfigurationError as exc:
    outcome["start"] = str(exc)
# Development mode runs on throw-away keys: the best a thief can do without the key files.
records = build_records(Settings(dev_mode=True))
attempts = {
    "manifest": lambda: records.flights.manifest_travelers(flight_id),
    "templates": lambda: records.uow(read_only=True).__enter__().travelers.gallery_templates(
        flight_id, sys.argv[2]
    ),
}
for name, attempt in attempts.items():
    try:
        outcome[name] = repr(attempt())
    except Exception as exc:
        outcome[name] = "refused: " + type(exc).__name__
print(json.dumps(outcome))
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_stolen_data_directory_decrypts_nothing(
    engine: FaceEngine, tmp_path: Path, lfw_dir: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.key_dir_problem() is None
    keys = FileKeyProvider(settings.resolved_key_dir)
    keys.initialise()
    services = build_services(settings, engine=engine, keys=keys)
    tokens = {"admin": services.keys.create_first_admin() or ""}
    tokens["officer"] = services.keys.create(Role.OFFICER, "desk")[1]
    tokens["gate"] = services.keys.create(Role.GATE, "gate", carrier="EE")[1]
    with TestClient(create_app(services)) as client:
        api = Api(client, services, tokens)
        flight_id = board_mixed_flight(api, lfw_dir)
        assert capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2)).status_code == 200
        # Owner-only, the database's WAL companions included (checked while they exist).
        database = settings.data_dir / "entryexit.db"
        assert mode(settings.data_dir) == 0o700
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert mode(path) == 0o600, path
        assert mode(settings.resolved_key_dir) == 0o700
        assert {mode(p) for p in settings.resolved_key_dir.iterdir()} == {0o600}
        assert not settings.resolved_key_dir.is_relative_to(settings.data_dir)
        stolen = tmp_path / "stolen"
        shutil.copytree(settings.data_dir, stolen)
    services.uow.engine.dispose()

    raw = b"".join(p.read_bytes() for p in stolen.rglob("*") if p.is_file())
    for secret in SECRETS:
        assert secret.encode() not in raw
    key_material = b"".join(p.read_bytes().strip() for p in settings.resolved_key_dir.iterdir())
    for line in key_material.splitlines():
        assert line not in raw

    thief = subprocess.run(
        [sys.executable, "-c", THIEF, flight_id, engine.model],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path / "thief"),
            "XDG_CONFIG_HOME": str(tmp_path / "thief" / "config"),
            "ENTRYEXIT_DATA_DIR": str(stolen),
            "ENTRYEXIT_MODEL_DIR": str(settings.resolved_model_dir),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert thief.returncode == 0, thief.stderr
    outcome = json.loads(thief.stdout.strip().splitlines()[-1])
    assert outcome["start"].startswith("no key-encryption key")
    assert outcome["manifest"].startswith("refused"), outcome
    assert outcome["templates"].startswith("refused"), outcome
    # (With the keys, the same calls open them: the refusals are the missing keys' doing.)
    opened = build_records(settings.model_copy(update={"data_dir": stolen}))
    assert len(opened.flights.manifest_travelers(flight_id)) == 3
    with opened.uow(read_only=True) as uow:
        assert len(uow.travelers.gallery_templates(flight_id, engine.model)) == 3
    opened.uow.engine.dispose()  # type: ignore[attr-defined]
    for secret in SECRETS:
        assert secret not in thief.stdout + thief.stderr


def test_the_service_refuses_keys_inside_the_data_directory(tmp_path: Path) -> None:
    inside = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "data" / "keys")
    problem = inside.key_dir_problem()
    assert problem is not None
    assert "inside the data directory" in problem
    FileKeyProvider(inside.resolved_key_dir).initialise()
    with pytest.raises(ConfigurationError, match="inside the data directory"):
        build_records(inside)
    same = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "data")
    with pytest.raises(ConfigurationError, match="inside the data directory"):
        build_records(same)
    # Development mode may keep them together (a throw-away setup), with a warning.
    build_records(inside.model_copy(update={"dev_mode": True}))
