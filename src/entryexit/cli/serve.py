"""``entryexit serve`` and ``entryexit keys create``."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from entryexit.cli._common import load_settings
from entryexit.cli.connections import ConnectionGuard, guard_for, guard_options
from entryexit.cli.worker import JobsOption, PurgeScheduler, drain_outbox
from entryexit.config import Settings
from entryexit.domain.access import Role
from entryexit.errors import ConfigurationError, InvalidInputError

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
logger = logging.getLogger(__name__)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default ENTRYEXIT_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ENTRYEXIT_PORT, 8000).")] = None,
    jobs: JobsOption = True,
    drain_seconds: Annotated[
        float,
        typer.Option(
            envvar="ENTRYEXIT_DRAIN_SECONDS",
            min=0,
            help="On SIGTERM, fail /readyz for this long (a load balancer stops sending new"
            " requests) while still answering, then stop.",
        ),
    ] = 0.0,
    shutdown_timeout: Annotated[
        int,
        typer.Option(
            envvar="ENTRYEXIT_SHUTDOWN_TIMEOUT",
            min=1,
            help="Then wait at most this many seconds for requests in flight.",
        ),
    ] = 30,
    tls_certfile: Annotated[
        Path | None,
        typer.Option(help="Serve HTTPS with this certificate chain (PEM); with --tls-keyfile."),
    ] = None,
    tls_keyfile: Annotated[
        Path | None, typer.Option(help="The certificate's private key (PEM).")
    ] = None,
) -> int:
    """Run the verification service (creating and migrating its database on first start).
    SIGTERM stops it gracefully: /readyz fails first, requests in flight are answered, queued
    admissions recorded, and it exits 0.

    A kiosk's browser opens the camera only in a secure context: HTTPS (these options, or TLS
    ended at a load balancer in front) or http://localhost on the kiosk itself."""
    if (tls_certfile is None) != (tls_keyfile is None):
        raise InvalidInputError("give both --tls-certfile and --tls-keyfile, or neither")
    from entryexit.api.observability import configure_logging
    from entryexit.bootstrap import build_services, check_key_dir
    from entryexit.web.app import create_service_app

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    check_key_dir(settings)  # before the models load: a refusal should be quick
    services = build_services(settings)
    token = services.keys.create_first_admin()
    if token is not None:
        typer.echo("First start: created an admin API key. It is shown only this once:")
        typer.echo(f"  {token}")
        typer.echo("Keep it safe; create narrower keys with `entryexit keys create`.")
    where = "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir}"
    bind_host, bind_port = host or settings.host, port or settings.port
    scheme = "https" if tls_certfile else "http"
    typer.echo(
        f"EntryExit on {scheme}://{bind_host}:{bind_port}: officer console at /console, kiosk at"
        f" /kiosk, API docs at /docs; database: {where}"
    )
    app = create_service_app(services, jobs=jobs)
    scheduler = PurgeScheduler(services.jobs, services.purge, settings.purge_interval_seconds)
    if jobs:
        scheduler.start()
    guard = guard_for(settings)
    config = server_config(
        app,
        guard,
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=shutdown_timeout,
        ssl_certfile=str(tls_certfile) if tls_certfile else None,
        ssl_keyfile=str(tls_keyfile) if tls_keyfile else None,
    )
    freeze_startup_heap()
    try:
        draining_server(config, app, drain_seconds).run()
    finally:
        if jobs:
            scheduler.stop()
            drain_outbox(services)
    return 0


def freeze_startup_heap() -> None:
    """Move everything built at startup (models' wrappers, settings, the app, about 200,000
    objects) out of the garbage collector's sight: they live as long as the process, and
    each full collection walked them all, a pause of 50-100 ms in some capture's answer
    (benchmarks/RESULTS.md, issue 17)."""
    gc.collect()
    gc.freeze()


def server_config(
    app: FastAPI, guard: ConnectionGuard | None = None, **options: object
) -> uvicorn.Config:
    """uvicorn's configuration for EntryExit: the logging configured by the caller (format,
    level, request ids), no access log (the service logs route templates, not paths), no
    proxy-header rewriting, and ``guard``'s bounds on connections (cli/connections.py; the
    settings' defaults when none is given).

    EntryExit reads ``X-Forwarded-For`` itself, and only from ``ENTRYEXIT_TRUSTED_PROXIES``;
    uvicorn's own handling (on by default for loopback peers) would rewrite the peer address
    first and let any local client choose the address its lock-outs and rate limits count.
    """
    import uvicorn

    if guard is None:
        # The settings' defaults, not the environment's: tests and `simulate` serve here.
        guard = guard_for(Settings.model_construct())
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        **guard_options(guard),
        **options,  # type: ignore[arg-type]
    )


@contextlib.contextmanager
def served_in_thread(
    app: FastAPI,
    host: str,
    port: int,
    log_level: str = "warning",
    start_seconds: float = 30.0,
    guard: ConnectionGuard | None = None,
) -> Iterator[uvicorn.Server]:
    """``app`` served by uvicorn, configured by :func:`server_config` as ``entryexit serve``
    configures it, in a thread of this process while the block runs (``entryexit simulate``,
    the browser tests); stopped at the block's end."""
    import uvicorn

    server = uvicorn.Server(server_config(app, guard, host=host, port=port, log_level=log_level))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_seconds
    try:
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise ConfigurationError(f"the in-process server on port {port} did not start")
            time.sleep(0.02)
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def draining_server(config: uvicorn.Config, app: FastAPI, drain_seconds: float) -> uvicorn.Server:
    """uvicorn's server with a drain on SIGTERM: ``/readyz`` answers 503 for
    ``drain_seconds`` (the balancer's health checks take the instance out) while requests are
    still answered; then uvicorn's own graceful stop (no new connections, requests in flight
    answered, the app's shutdown). A second signal stops at once. It returns normally, so the
    process exits 0, where uvicorn would re-raise the signal and die of it."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        draining = False

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.draining or drain_seconds <= 0 or sig != signal.SIGTERM:
                if self.should_exit and sig == signal.SIGINT:
                    self.force_exit = True
                self.should_exit = True
                return
            self.draining = app.state.draining = True
            timer = threading.Timer(drain_seconds, self._stop)
            timer.daemon = True
            timer.start()

        def _stop(self) -> None:
            self.should_exit = True

    return DrainingServer(config)


@keys_app.command("create")
def create_key(
    role: Annotated[
        Role,
        typer.Option(
            help="admin, officer, supervisor, watchlist_manager, gate, auditor or monitor"
            " (metrics only)."
        ),
    ],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    carrier: Annotated[
        str | None, typer.Option(help="For gate keys: the one carrier whose flights it serves.")
    ] = None,
) -> int:
    """Create an API key; the key is printed once and only its hash is stored."""
    from entryexit.bootstrap import build_records

    principal, token = build_records(load_settings()).keys.create(role, name, carrier)
    typer.echo(token)
    typer.echo(
        f"created {principal.role.value} key {principal.key_id} ({principal.name})", err=True
    )
    return 0


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (printed when it was created).")],
) -> int:
    """Revoke an API key: every instance refuses it from its next request on."""
    from entryexit.bootstrap import build_records

    build_records(load_settings()).keys.revoke(key_id)
    typer.echo(f"revoked API key {key_id}")
    return 0


@keys_app.command("init")
def init_keys(
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing (exit 0) if keys already exist.")
    ] = False,
) -> int:
    """Create the key-encryption key and the audit signing key (files readable by you only)."""
    from entryexit.adapters.crypto.keys import FileKeyProvider
    from entryexit.bootstrap import check_key_dir

    settings = load_settings()
    check_key_dir(settings)
    provider = FileKeyProvider(settings.resolved_key_dir)
    if if_missing and provider.exists():
        typer.echo(f"keys already present in {provider.directory}")
        return 0
    kek_id = provider.initialise()
    typer.echo(f"created key-encryption key {kek_id} and the audit key in {provider.directory}")
    typer.echo("Back this directory up separately from the database: without it, the biometric")
    typer.echo("data cannot be read; with it beside the database, encryption protects nothing.")
    return 0


@keys_app.command("rotate")
def rotate_keys(
    retire: Annotated[
        bool, typer.Option(help="Delete the old key files once every data key is re-wrapped.")
    ] = True,
) -> int:
    """Make a new key-encryption key current and re-wrap every data key under it, in batches,
    while the service keeps running."""
    from entryexit.adapters.crypto.keys import FileKeyProvider
    from entryexit.bootstrap import build_records
    from entryexit.services.keys import rotate_data_keys

    settings = load_settings()
    provider = FileKeyProvider(settings.resolved_key_dir)
    old_id, _ = provider.current_kek()
    new_id = provider.new_kek()
    records = build_records(settings, keys=provider)
    rewrapped, remaining = rotate_data_keys(records.uow, records.audit, new_id)
    if retire and not remaining:
        provider.retire_kek(old_id)
    typer.echo(f"KEK {old_id} -> {new_id}: {rewrapped} data keys re-wrapped")
    return 0
