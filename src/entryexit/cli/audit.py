"""``entryexit audit verify | repair | public-key | acknowledge-restore``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from entryexit.cli._common import load_settings, read_input_file

if TYPE_CHECKING:
    from entryexit.services.audit import AuditVerification

app = typer.Typer(help="Check the tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
def verify(
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            help="A checkpoint file (or a service log holding checkpoint lines) to hold the"
            " log against: catches rollback, truncation and a wiped log."
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="The checkpoint public key (PEM, from `entryexit audit public-key`); default:"
            " the key directory's own."
        ),
    ] = None,
) -> int:
    """Walk the whole hash chain and check the signed head; name every wrong event, list
    the repairs and restores passed, and with --checkpoints hold the log against them."""
    from entryexit.adapters.crypto.checkpoints import Ed25519CheckpointVerifier, parse_checkpoints
    from entryexit.bootstrap import build_records
    from entryexit.services.audit import AuditVerification

    settings = load_settings()
    lines = (
        None
        if checkpoints is None
        else parse_checkpoints(
            read_input_file(checkpoints, "checkpoint file").decode("utf-8", errors="replace")
        )
    )
    verifier = (
        None
        if public_key is None
        else Ed25519CheckpointVerifier.from_pem(read_input_file(public_key, "public key"))
    )
    records = build_records(settings)
    if lines is None:
        result = AuditVerification(records.audit.verify())
    else:
        result = records.checkpoints.verify(lines, verifier)
    _report(result)
    return 0 if result.ok else 1


def _report(result: AuditVerification) -> None:
    chain = result.chain
    for repair in chain.repairs:
        details = repair.entry.details
        typer.echo(
            f"repair at event {repair.sequence} on {repair.entry.occurred_at:%Y-%m-%d %H:%M} UTC"
            f" by {repair.entry.actor_key_id or 'an administrator (CLI)'}: found the chain"
            f" {'intact' if details.get('chain_ok') == 'yes' else 'broken'}"
            + (f", head: {details['head_problem']}" if details.get("head_problem") else "")
        )
    if result.checkpoints is not None:
        for restore in result.checkpoints.restores:
            typer.echo(restore.describe())
    if chain.ok:
        typer.echo(f"audit log intact: {chain.events} events, head signature valid")
    else:
        typer.echo(
            f"audit log BROKEN: {chain.problem_count} wrong event(s) or link(s) in"
            f" {chain.events} events",
            err=True,
        )
        for problem in chain.problems:
            typer.echo(f"  event {problem.sequence}: {problem.reason}", err=True)
        if chain.problem_count > len(chain.problems):
            typer.echo(f"  ... and {chain.problem_count - len(chain.problems)} more", err=True)
    report = result.checkpoints
    if report is None:
        return
    if report.ok:
        superseded = (
            f" ({report.superseded} superseded by an acknowledged restore)"
            if report.superseded
            else ""
        )
        typer.echo(f"checkpoints: {report.checked} agree with the log{superseded}")
        return
    typer.echo(f"checkpoints: {len(report.problems)} problem(s)", err=True)
    for text in report.problems:
        typer.echo(f"  {text}", err=True)


@app.command("repair")
def repair() -> int:
    """Let audited work go on after the log was found untrusted: with the log held, verify
    it, record what was found as an audit event, and sign the head after the last stored
    event (one transaction). Nothing is hidden: every wrong event still fails `audit
    verify` by its own MAC, and verify lists every repair."""
    settings = load_settings()
    from entryexit.bootstrap import build_records

    found = build_records(settings).audit.repair()
    state = "intact" if found.ok else f"broken at event {found.first_broken_sequence}"
    typer.echo(f"audit log {state} ({found.events} events); repair recorded, head signed")
    return 0


@app.command("public-key")
def public_key() -> int:
    """Print the checkpoint public key (PEM): all a verifier needs to check checkpoints."""
    from entryexit.adapters.crypto.checkpoints import Ed25519CheckpointSigner
    from entryexit.bootstrap import build_key_provider

    signer = Ed25519CheckpointSigner(build_key_provider(load_settings()).checkpoint_key)
    typer.echo(signer.public_key_pem(), nl=False)
    return 0


@app.command("acknowledge-restore")
def acknowledge_restore(
    reason: Annotated[
        str, typer.Option(help="Why the database was restored (recorded and signed).")
    ],
) -> int:
    """After restoring the database from a backup: record a restore event signed with the
    checkpoint key, and a checkpoint acknowledging it, so that `audit verify --checkpoints FILE`
    reports a restore (acknowledged) instead of a rollback."""
    from entryexit.bootstrap import build_records

    records = build_records(load_settings())
    event = records.checkpoints.acknowledge_restore(reason)
    typer.echo(
        f"restore acknowledged at event {event.sequence} (log restored to sequence"
        f" {event.entry.details['restored_sequence']}); checkpoint written"
    )
    return 0
