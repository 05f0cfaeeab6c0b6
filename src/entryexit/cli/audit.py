"""``entryexit audit verify``."""

from __future__ import annotations

import typer

from entryexit.cli._common import load_settings

app = typer.Typer(help="Check the tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
def verify() -> int:
    """Walk the whole hash chain and check the signed head; name the first broken link."""
    settings = load_settings()
    from entryexit.bootstrap import build_records

    result = build_records(settings).audit.verify()
    if result.ok:
        typer.echo(f"audit log intact: {result.events} events, head signature valid")
        return 0
    typer.echo(
        f"audit log BROKEN at event {result.first_broken_sequence}: {result.reason}", err=True
    )
    return 1


@app.command("repair")
def repair() -> int:
    """Let audited work go on after the log was found untrusted: verify it, record what was
    found as an audit event, and sign the head after the last stored event. Nothing is
    hidden: every wrong event still fails `audit verify` by its own MAC."""
    settings = load_settings()
    from entryexit.bootstrap import build_records

    found = build_records(settings).audit.repair()
    state = "intact" if found.ok else f"broken at event {found.first_broken_sequence}"
    typer.echo(f"audit log {state} ({found.events} events); repair recorded, head signed")
    return 0
