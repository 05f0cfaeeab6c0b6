"""``entryexit serve`` and ``entryexit keys create``."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from entryexit.cli._common import load_settings
from entryexit.domain.access import Role
from entryexit.errors import InvalidInputError

if TYPE_CHECKING:
    from entryexit.services.privacy import PurgeService

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
logger = logging.getLogger(__name__)


class PurgeScheduler:
    """Runs the retention purge every ``interval`` seconds inside the service process."""

    def __init__(self, purge: PurgeService, interval: float) -> None:
        self._purge = purge
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="purge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                counts = self._purge.run()
                logger.info("purge: %s", counts)
            except Exception as exc:  # the next run retries; counts carry no personal data
                logger.error("purge failed: %s", type(exc).__name__)
            self._stop.wait(self._interval)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default ENTRYEXIT_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ENTRYEXIT_PORT, 8000).")] = None,
    tls_certfile: Annotated[
        Path | None,
        typer.Option(help="Serve HTTPS with this certificate chain (PEM); with --tls-keyfile."),
    ] = None,
    tls_keyfile: Annotated[
        Path | None, typer.Option(help="The certificate's private key (PEM).")
    ] = None,
) -> int:
    """Run the verification service (creating and migrating its database on first start).

    A kiosk's browser opens the camera only in a secure context: HTTPS (these options, or TLS
    ended at a load balancer in front) or http://localhost on the kiosk itself."""
    if (tls_certfile is None) != (tls_keyfile is None):
        raise InvalidInputError("give both --tls-certfile and --tls-keyfile, or neither")
    import uvicorn

    from entryexit.bootstrap import build_services
    from entryexit.web.app import create_service_app

    settings = load_settings()
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
    scheduler = PurgeScheduler(services.purge, settings.purge_interval_seconds)
    scheduler.start()
    try:
        uvicorn.run(
            create_service_app(services),
            host=bind_host,
            port=bind_port,
            log_level="warning",
            ssl_certfile=str(tls_certfile) if tls_certfile else None,
            ssl_keyfile=str(tls_keyfile) if tls_keyfile else None,
        )
    finally:
        scheduler.stop()
    return 0


@keys_app.command("create")
def create_key(
    role: Annotated[Role, typer.Option(help="admin, officer, gate or auditor.")],
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


@keys_app.command("init")
def init_keys(
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing (exit 0) if keys already exist.")
    ] = False,
) -> int:
    """Create the key-encryption key and the audit signing key (files readable by you only)."""
    from entryexit.adapters.crypto.keys import FileKeyProvider

    provider = FileKeyProvider(load_settings().resolved_key_dir)
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
