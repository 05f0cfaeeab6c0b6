"""``entryexit serve`` and ``entryexit keys create``."""

from __future__ import annotations

from typing import Annotated

import typer

from entryexit.bootstrap import build_services, build_store, utc_now
from entryexit.cli._common import load_settings
from entryexit.domain.access import Role
from entryexit.services.keys import KeyService

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default ENTRYEXIT_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ENTRYEXIT_PORT, 8000).")] = None,
) -> int:
    """Run the verification service (creating and migrating its database on first start)."""
    import uvicorn

    from entryexit.api.app import create_app

    settings = load_settings()
    services = build_services(settings)
    token = services.keys.create_first_admin()
    if token is not None:
        typer.echo("First start: created an admin API key. It is shown only this once:")
        typer.echo(f"  {token}")
        typer.echo("Keep it safe; create narrower keys with `entryexit keys create`.")
    where = "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir}"
    bind_host, bind_port = host or settings.host, port or settings.port
    typer.echo(
        f"EntryExit on http://{bind_host}:{bind_port} (API docs at /docs), database: {where}"
    )
    uvicorn.run(create_app(services), host=bind_host, port=bind_port, log_level="warning")
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
    keys = KeyService(build_store(load_settings()), utc_now)
    principal, token = keys.create(role, name, carrier)
    typer.echo(token)
    typer.echo(
        f"created {principal.role.value} key {principal.key_id} ({principal.name})", err=True
    )
    return 0
