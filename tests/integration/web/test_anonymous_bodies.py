"""Anonymous clients cannot make the service buffer large bodies through the console's and
the kiosk's forms (session 9 probe G2: with no key and no cookie, 256 connections x 16 MiB
bodies held open made the process hold 4 GiB), and all requests together hold at most the
body budget. Over a real server and real sockets, as the attack runs."""

from __future__ import annotations

import contextlib
import gc
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from entryexit.api import keyless
from entryexit.api.limits import BodySizeLimit
from entryexit.biometrics import FaceEngine
from entryexit.cli.serve import served_in_thread
from entryexit.config import Settings
from tests.integration.api.conftest import Api
from tests.integration.web.test_console import PASSWORD, csrf
from tests.integration.web.test_kiosk import KIOSK, site

pytestmark = [pytest.mark.models]

BODY = 16 * 1024 * 1024 - 4096  # just under the default request cap
CHUNK = b"\xff" * (1 << 20)
BOUNDARY = "zz"
PART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="prints"; filename="a.png"\r\n'
    "Content-Type: image/png\r\n\r\n"
).encode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _served_site(settings: Settings, engine: FaceEngine) -> Iterator[tuple[str, Api]]:
    built = site(settings.model_copy(update={"console_secure_cookies": False}), engine)
    port = _free_port()
    app = built.client.app
    assert isinstance(app, FastAPI)
    try:
        with served_in_thread(app, "127.0.0.1", port, "critical", start_seconds=60):
            yield f"127.0.0.1:{port}", built
    finally:
        built.services.uow.engine.dispose()


@contextlib.contextmanager
def _served(settings: Settings, engine: FaceEngine) -> Iterator[tuple[str, FastAPI]]:
    with _served_site(settings, engine) as (address, built):
        app = built.client.app
        assert isinstance(app, FastAPI)
        yield address, app


def _body_limit(app: FastAPI) -> BodySizeLimit:
    """The app's body guard (its middleware stack is built by the first request)."""
    layer: object = app.middleware_stack
    while layer is not None and not isinstance(layer, BodySizeLimit):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, BodySizeLimit)
    return layer


def _until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server did not get there in time"
        time.sleep(0.05)


def _rss_mb() -> float:
    with Path("/proc/self/status").open() as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def _hold_body(
    address: str, path: str, size: int, headers: str = "", body: bool = True
) -> socket.socket:
    """A POST's headers and all of its body but the last 100 bytes (as much as the server
    takes): the probe's attack; or (``body`` false) its headers and first bytes only. The
    connection is left open."""
    host, port = address.split(":")
    connection = socket.create_connection((host, int(port)), timeout=5)
    connection.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {size}\r\n\r\n"
        ).encode()
        + PART
    )
    sent = len(PART) if body else size
    with contextlib.suppress(OSError):  # refused: the server stops reading, or closes
        while sent < size - 100:
            part = CHUNK[: min(len(CHUNK), size - 100 - sent)]
            connection.sendall(part)
            sent += len(part)
    return connection


def _answer(connection: socket.socket, seconds: float = 10.0) -> bytes:
    """What the server has answered (b"" if it closed without an answer it could deliver;
    b"no answer" if it is still waiting for the body, as it would without the guard)."""
    connection.settimeout(seconds)
    try:
        return connection.recv(4096)
    except TimeoutError:
        return b"no answer"
    except OSError:
        return b""


def test_anonymous_large_bodies_are_refused_before_they_are_buffered(
    database_url: str, engine: FaceEngine, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    attacks = [
        ("/kiosk/captures", ""),
        ("/console/cases/x/fingerprints", ""),
        ("/console/cases/x/fingerprints", "Cookie: entryexit_session=made-up\r\n"),
        ("/kiosk/quality", "Cookie: entryexit_kiosk=made-up\r\n"),
        ("/console/login", ""),  # an open form: capped far below this
    ]
    with _served(settings, engine) as (address, _), ExitStack() as held:
        httpx.get(f"http://{address}/console/login", timeout=30)  # warm-up
        gc.collect()
        before = _rss_mb()
        connections = [
            held.enter_context(_hold_body(address, path, BODY, headers))
            for path, headers in attacks * 2
        ]
        time.sleep(1.0)
        gc.collect()
        grown = _rss_mb() - before
        answers = [_answer(connection) for connection in connections]
    assert grown < 20, f"the server's memory grew by {grown:.0f} MB"
    for (path, _), answer in zip(attacks * 2, answers, strict=True):
        # Refused from the headers (or reset before the answer could be read).
        assert answer == b"" or re.match(rb"HTTP/1.1 (303|401|413) ", answer), (path, answer)


@contextlib.contextmanager
def _signed_in(address: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{address}", timeout=30, follow_redirects=True) as client:
        yield _sign_in(client)


def _sign_in(client: httpx.Client, username: str = "olga") -> httpx.Client:
    page = client.get("/console/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "login_csrf": token.group(1)},
    )
    assert response.status_code == 200
    assert response.url.path != "/console/login"
    return client


def test_bodies_being_read_hold_at_most_the_budget_and_a_signed_in_upload_works(
    database_url: str, engine: FaceEngine, tmp_path: Path
) -> None:
    budget, size = 4 * 1024 * 1024, 1536 * 1024
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        max_buffered_body_bytes=budget,
        max_request_bytes=2 * 1024 * 1024,
    )
    with _served(settings, engine) as (address, app), _signed_in(address) as officer:
        cookie = f"Cookie: entryexit_session={officer.cookies['entryexit_session']}\r\n"
        path = "/console/cases/00000000-0000-0000-0000-000000000000/fingerprints"
        with ExitStack() as held:
            first = held.enter_context(_hold_body(address, path, size, cookie))
            second = held.enter_context(_hold_body(address, path, size, cookie))
            # Both held against the budget before the third asks (their session checks run on
            # the thread pool: on a slow machine the third's could otherwise come first).
            limit = _body_limit(app)
            _until(lambda: limit.buffered >= 2 * size)
            # Refused from its headers (its body not sent, so that the answer can be read).
            third = held.enter_context(_hold_body(address, path, size, cookie, body=False))
            answer = _answer(third)
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert b"retry-after: 5" in answer.lower()
            for connection in (first, second):  # still being read: no answer yet
                connection.settimeout(0.5)
                with pytest.raises(TimeoutError):
                    connection.recv(1)
        # Closed: their bytes are given back (once the server has seen them go, which a
        # loaded machine may take a while to do); the officer's own upload is read and handled.
        page = officer.get("/console/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        deadline = time.monotonic() + 20.0
        while True:
            upload = officer.post(
                path,
                data={"action": "verify", "fingers": "2", "csrf_token": token.group(1)},
                files=[("prints", ("a.png", b"\x89PNG" + b"\0" * size, "image/png"))],
                follow_redirects=False,
            )
            if upload.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        # Past the guard and the budget: the route itself answers (no such case).
        assert upload.status_code not in (303, 401, 413, 503), upload.status_code
        assert upload.status_code == 404, upload.text[:300]


def _paired_kiosk(address: str, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """A kiosk paired by a supervisor, over the real server: (its session cookie, its CSRF
    token). ``headers``: what the kiosk's requests carry (an X-Forwarded-For)."""
    base = f"http://{address}"
    with (
        httpx.Client(base_url=base, timeout=30, headers=headers) as kiosk,
        httpx.Client(base_url=base, timeout=30, follow_redirects=True) as supervisor,
    ):
        started = kiosk.post("/kiosk/pairing", headers=KIOSK)
        assert started.status_code == 200, started.text
        _sign_in(supervisor, "sam")
        paired = supervisor.post(
            "/console/kiosks/pair",
            data={
                "code": started.json()["code"],
                "carrier": "EE",
                "port": "JFK",
                "lane": "3",
                "flight_id": "",
                "csrf_token": csrf(supervisor.get("/console/kiosks").text),
            },
            follow_redirects=False,
        )
        assert paired.status_code == 303
        assert kiosk.get("/kiosk/pairing").json() == {"state": "paired"}
        token = re.search(r'data-csrf="([^"]+)"', kiosk.get("/kiosk").text)
        assert token is not None
        return kiosk.cookies["entryexit_kiosk"], token.group(1)


def _kiosk_client(address: str) -> httpx.Client:
    """A client with a paired kiosk's session cookie and CSRF token."""
    cookie, token = _paired_kiosk(address)
    return httpx.Client(
        base_url=f"http://{address}",
        timeout=30,
        headers={"X-CSRF-Token": token},
        cookies={"entryexit_kiosk": cookie},
    )


def _made_up_cookie_answers(held: ExitStack, address: str, count: int) -> list[bytes]:
    """The answers to ``count`` kiosk captures with made-up cookies, each from its headers
    and first bytes only (its connection held open in ``held``)."""
    answers = []
    for n in range(count):
        made_up = f"Cookie: entryexit_kiosk=made-up-{n}\r\n"
        attacker = held.enter_context(
            _hold_body(address, "/kiosk/captures", BODY, made_up, body=False)
        )
        answers.append(_answer(attacker))
    return answers


def test_a_live_kiosk_cookie_from_outside_the_lanes_is_refused_before_its_body_is_read(
    database_url: str, engine: FaceEngine, tmp_path: Path
) -> None:
    """Session 9 review L5: a cookie lifted off a kiosk was refused 403 outside the lanes'
    networks only once the service had read its multipart body (up to 16 MiB a request)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        kiosk_networks=(ip_network("10.20.0.0/16"),),
        trusted_proxies=(ip_network("127.0.0.1/32"),),  # the test's own proxy
    )
    with _served_site(settings, engine) as (address, built), ExitStack() as held:
        cookie, token = _paired_kiosk(address, {"X-Forwarded-For": "10.20.3.4"})
        stolen = f"Cookie: entryexit_kiosk={cookie}\r\nX-CSRF-Token: {token}\r\n"
        for path in ("/kiosk/captures", "/kiosk/quality", "/kiosk/pairing"):
            # Its headers and first bytes only: an answer before the body is the refusal.
            thief = held.enter_context(_hold_body(address, path, BODY, stolen, body=False))
            answer = _answer(thief)
            assert answer.startswith(b"HTTP/1.1 403 "), (path, answer)
        assert _body_limit(built.client.app).buffered == 0  # type: ignore[arg-type]
        # From the lanes (through the proxy) the same cookie's small capture is taken.
        inside = httpx.post(
            f"http://{address}/kiosk/quality",
            headers={"X-Forwarded-For": "10.20.3.4", "X-CSRF-Token": token},
            cookies={"entryexit_kiosk": cookie},
            files={"frame": ("f.jpg", b"not a photo", "image/jpeg")},
            timeout=30,
        )
        assert inside.status_code not in (401, 403, 429), inside.text
    refusals = [
        e.entry
        for e in built.services.audit.all_events()
        if e.entry.outcome == "denied" and e.entry.action.startswith("POST /kiosk")
    ]
    # Audited in the kiosk's name, as the route's own refusal was.
    assert len([entry for entry in refusals if entry.actor_role == "gate"]) == 3


def test_made_up_kiosk_cookies_cost_a_read_only_until_their_address_is_blocked(
    database_url: str, engine: FaceEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 9 review L4: every POST with a made-up kiosk cookie took a thread of the pool
    the kiosks' captures queue on, and a database read, without limit. Past the failed
    sign-ins an address may make, they are refused 429 without either; a real kiosk seen
    live from that address still gets in."""
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, sign_in_failures_before_block=3
    )
    with _served_site(settings, engine) as (address, built), ExitStack() as held:
        kiosk = held.enter_context(_kiosk_client(address))
        frame = {"frame": ("f.jpg", b"not a photo", "image/jpeg")}
        assert kiosk.post("/kiosk/quality", files=frame).status_code not in (401, 403, 429)
        reads: list[str] = []
        session = built.services.kiosks.session

        def counted(*args: Any, **kwargs: Any) -> Any:
            reads.append("read")
            return session(*args, **kwargs)

        monkeypatch.setattr(built.services.kiosks, "session", counted)
        answers = _made_up_cookie_answers(held, address, 8)
        statuses = [answer[9:12] for answer in answers]
        assert statuses == [b"401"] * 3 + [b"429"] * 5, answers
        assert all(b"retry-after:" in answer.lower() for answer in answers[3:])
        assert len(reads) == 3  # the blocked ones were refused without a read
        # The real kiosk at the same address, seen live already, is not refused.
        assert kiosk.post("/kiosk/quality", files=frame).status_code not in (401, 403, 429)


def test_made_up_api_keys_cost_a_read_only_until_their_address_is_blocked_and_gates_get_in(
    database_url: str, engine: FaceEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 10 (after L4): every request with a made-up API key took a thread-pool thread
    and a database read, without limit. Past the failed sign-ins an address may make, POSTs
    and GETs with keys that are not known are refused 429 from their headers, without
    either; gates behind the same (NAT) address still get in: one seen already, and one this
    instance has never seen (found in one read of the live keys, not one read a request)."""
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, sign_in_failures_before_block=3
    )
    with _served_site(settings, engine) as (address, built), ExitStack() as held:
        flight = built.create_flight()["id"]
        base = f"http://{address}"
        opt_out = {"issuing_state": "UTO", "number": "X1234567", "gate": "B7"}

        def gate_posts(role: str) -> int:
            answer = httpx.post(
                f"{base}/v1/flights/{flight}/opt-outs",
                json=opt_out,
                headers=built.headers(role),
                timeout=30,
            )
            return answer.status_code

        # The EE gate has been at work on this instance before the flood.
        assert gate_posts("gate") not in (401, 403, 429)
        keys = built.services.keys
        reads: list[str] = []
        authenticate, remember_live, unit_of_work = keys.authenticate, keys.remember_live, keys._uow

        def counted(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                reads.append(name)
                return method(*args, **kwargs)

            return call

        monkeypatch.setattr(keys, "authenticate", counted("key", authenticate))
        monkeypatch.setattr(keys, "remember_live", counted("all keys", remember_live))
        # Every read of the key store (the audit's check of refused keys past its budget of
        # events, KeyService.is_issued, included).
        monkeypatch.setattr(keys, "_uow", counted("read", unit_of_work))
        answers = []
        for n in range(12):
            made_up = f"X-API-Key: eex_{n:012x}_made-up-secret\r\n"
            attacker = held.enter_context(
                _hold_body(address, f"/v1/flights/{flight}/captures", BODY, made_up, body=False)
            )
            answers.append(_answer(attacker))
        statuses = [answer[9:12] for answer in answers]
        assert statuses == [b"401"] * 3 + [b"429"] * 9, answers
        assert all(b"retry-after:" in answer.lower() for answer in answers[3:])
        flooded = [
            httpx.get(
                f"{base}/v1/flights/{flight}",
                headers={"X-API-Key": f"eex_{n:012x}_made-up-secret"},
                timeout=30,
            )
            for n in range(12, 42)  # past the audit's 30 refusals a minute from an address
        ]
        assert {answer.status_code for answer in flooded} == {429}
        flood_reads = [name for name in reads if name != "read"]
        assert reads.count("read") == 4, reads
        # Gates behind the same address: the one seen live, and the other carrier's, whose key
        # this instance never read alone, are not refused for the neighbour's flood.
        assert gate_posts("gate") not in (401, 403, 429)
        assert gate_posts("gate_other_carrier") not in (401, 429)
        # Three reads of one key each, then (once blocked) one read of all live keys for the
        # whole flood; the gates' requests did not read them again.
        assert flood_reads == ["key"] * 3 + ["all keys"], flood_reads
        assert reads.count("all keys") == 1


def test_a_kiosk_seen_live_is_checked_again_not_refused_while_its_address_is_blocked(
    database_url: str, engine: FaceEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 10 review E1: a kiosk's cookie found live was remembered for 300 s only; past
    that, with a neighbour behind the same NAT address sending made-up cookies, the kiosk got
    429 until the block ended. A cookie once found live is checked again instead (a read);
    made-up ones are still refused without one."""
    monkeypatch.setattr(keyless, "LIVE_COOKIE_SECONDS", 0.0)  # every remembered cookie is due
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, sign_in_failures_before_block=3
    )
    with _served_site(settings, engine) as (address, _site), ExitStack() as held:
        kiosk = held.enter_context(_kiosk_client(address))
        frame = {"frame": ("f.jpg", b"not a photo", "image/jpeg")}
        assert kiosk.post("/kiosk/quality", files=frame).status_code not in (401, 403, 429)
        answers = [answer[9:12] for answer in _made_up_cookie_answers(held, address, 5)]
        assert answers == [b"401"] * 3 + [b"429"] * 2, answers
        for _ in range(3):
            assert kiosk.post("/kiosk/quality", files=frame).status_code not in (401, 403, 429)
