"""What the browser tests share: the service in a real HTTP server (uvicorn in a thread) with
keys and console users, Chromium, and signing in to the console."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.bootstrap import SqlServices, build_services
from entryexit.cli.serve import served_in_thread
from entryexit.config import Settings
from entryexit.domain.access import Role
from entryexit.services.ports import FaceAnalyser
from entryexit.web.app import create_service_app
from tests.conftest import REPO_ROOT
from tests.integration.api.conftest import Api

if TYPE_CHECKING:  # playwright is imported where the browser is started
    from playwright.sync_api import Page

    from entryexit.biometrics.fingerprints import FingerprintEngine

CHROMIUM = Path(os.environ.get("ENTRYEXIT_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS_ROOT = Path(os.environ.get("ENTRYEXIT_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))
# Screenshots of the console's pages, for people to look at.
CONSOLE_ARTIFACTS = ARTIFACTS_ROOT / "console"
PASSWORD = "browsers need passwords too"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class Running:
    url: str
    api: Api
    services: SqlServices


class Site(Protocol):
    url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def chromium_path() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}; ./scripts/test installs it")
    return CHROMIUM


def keyed_services(
    settings: Settings,
    engine: FaceAnalyser,
    users: dict[str, Role],
    fingerprint_engine: Callable[[], FingerprintEngine] | None = None,
) -> tuple[SqlServices, dict[str, str]]:
    """The services over a new key directory, an API key for each role the tests drive
    (admin, officer, an EE gate, auditor) and a console account for each of ``users``."""
    keys = FileKeyProvider(settings.resolved_key_dir)
    keys.initialise()
    services = build_services(
        settings, engine=engine, keys=keys, fingerprint_engine=fingerprint_engine
    )
    admin = services.keys.create_first_admin()
    assert admin is not None
    api_keys = {"admin": admin, "officer": services.keys.create(Role.OFFICER, "desk")[1]}
    api_keys["gate"] = services.keys.create(Role.GATE, "gate EE", carrier="EE")[1]
    api_keys["auditor"] = services.keys.create(Role.AUDITOR, "audit")[1]
    for username, role in users.items():
        services.accounts.create_user(username, PASSWORD, role)
    return services, api_keys


@contextmanager
def served(services: SqlServices) -> Iterator[str]:
    """The service app (API, console, kiosk) on a free port; its URL on localhost, which
    Chromium treats as a secure context (Secure cookies and the camera over plain HTTP)."""
    with served_in_thread(create_service_app(services), "127.0.0.1", free_port(), "error") as up:
        yield f"http://localhost:{up.config.port}"


def sign_in(page: Page, site: Site, username: str) -> None:
    page.goto(f"{site.url}/console/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/$"))


@pytest.fixture
def page(running: Running) -> Iterator[Page]:
    """A console page in Chromium over the requesting module's ``running`` service; the
    strict CSP must not have blocked anything the console itself needs."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    CONSOLE_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=BROWSER_ARGS
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        yield page
        assert not [e for e in errors if "Content Security Policy" in e], errors
        context.close()
        browser.close()
