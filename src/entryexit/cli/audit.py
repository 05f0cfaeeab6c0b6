"""``entryexit audit verify``."""

from __future__ import annotations

import typer

from entryexit.bootstrap import build_key_provider, build_store, utc_now
from entryexit.cli._common import load_settings
from entryexit.services.audit import AuditTrail

app = typer.Typer(help="Check the tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
def verify() -> int:
    """Walk the whole hash chain and check the signed head; name the first broken link."""
    settings = load_settings()
    keys = build_key_provider(settings)
    result = AuditTrail(build_store(settings, keys), utc_now, keys).verify()
    if result.ok:
        typer.echo(f"audit log intact: {result.events} events, head signature valid")
        return 0
    typer.echo(
        f"audit log BROKEN at event {result.first_broken_sequence}: {result.reason}", err=True
    )
    return 1
