"""``entryexit policy show|load|list``, ``entryexit purge`` and ``entryexit privacy
purge|report|erase``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from entryexit.cli._common import load_settings, read_input_file
from entryexit.errors import InvalidInputError
from entryexit.services.policies import SHIPPED_POLICIES, shipped_policy_text

if TYPE_CHECKING:
    from entryexit.bootstrap import Records

policy_app = typer.Typer(
    help="Capture and retention policies (versioned data).", no_args_is_help=True
)


def _records() -> Records:
    from entryexit.bootstrap import build_records

    return build_records(load_settings())


@policy_app.command("list")
def list_policies() -> int:
    """Every loaded policy version, and which one is in force now."""
    policies = _records().policies
    current = policies.in_force().version
    for policy in policies.all():
        marker = "*" if policy.version == current else " "
        effective = policy.effective_from.isoformat()
        typer.echo(f"{marker} {policy.version:28} effective {effective}  {policy.description}")
    return 0


@policy_app.command("show")
def show_policy(
    version: Annotated[
        str | None, typer.Option(help="A version (default: the one in force).")
    ] = None,
) -> int:
    """Print a policy as JSON."""
    policies = _records().policies
    policy = policies.get(version) if version else policies.in_force()
    typer.echo(json.dumps(policy.as_dict(), indent=2))
    return 0


@policy_app.command("load")
def load_policy(
    file: Annotated[
        Path | None, typer.Argument(help="A policy file (TOML). Omit with --shipped.")
    ] = None,
    shipped: Annotated[
        str | None, typer.Option(help=f"Load a shipped policy: {', '.join(SHIPPED_POLICIES)}.")
    ] = None,
) -> int:
    """Load a policy version; it governs from its effective date. Versions are immutable."""
    if (file is None) == (shipped is None):
        raise typer.BadParameter("give a FILE or --shipped NAME")
    if shipped is not None:
        text = shipped_policy_text(shipped)
    else:
        assert file is not None  # exactly one of the two was given (checked above)
        text = read_input_file(file, "policy").decode("utf-8", errors="replace")
    policies = _records().policies
    policy, added = policies.load(text)
    verb = "loaded" if added else "already loaded:"
    typer.echo(f"{verb} {policy.version}, effective {policy.effective_from.isoformat()}")
    return 0


def purge() -> int:
    """Delete every item whose retention has ended, and record how many of each kind."""
    from entryexit.bootstrap import build_purge

    counts = build_purge(_records()).run()
    typer.echo(json.dumps(counts))
    return 0


privacy_app = typer.Typer(
    help="Retention, the erasure of one traveler, and the privacy report.", no_args_is_help=True
)


def _moment(value: str, option: str) -> datetime:
    """A day (its start, UTC) or an ISO date and time with a zone."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.min, UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{option} must be a date like 2031-12-31 or a time like 2031-12-31T18:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInputError(f"{option} needs a time zone (for example Z)")
    return moment.astimezone(UTC)


@privacy_app.command("purge")
def privacy_purge(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Dry run: what a purge at this date (YYYY-MM-DD, or a time) would delete; "
            "nothing is deleted.",
        ),
    ] = None,
) -> int:
    """Delete every item whose retention has ended (with --as-of: only show what that date
    would delete)."""
    from entryexit.bootstrap import build_purge

    purge_service = build_purge(_records())
    if as_of is None:
        typer.echo(json.dumps(purge_service.run()))
        return 0
    moment = _moment(as_of, "--as-of")
    counts = purge_service.preview(moment)
    typer.echo(json.dumps({"as_of": moment.isoformat(), "dry_run": True, "would_delete": counts}))
    return 0


@privacy_app.command("report")
def privacy_report(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Count holdings and overdue items as of this date."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Start of the reported period (default: 7 days before --as-of)."),
    ] = None,
) -> int:
    """The privacy report (counts only): held, overdue, purges, erasures, opt-outs."""
    records = _records()
    moment = _moment(as_of, "--as-of") if as_of else records.clock()
    start = _moment(since, "--since") if since else moment - timedelta(days=7)
    typer.echo(json.dumps(records.privacy.report(start, moment, moment), indent=2))
    return 0


@privacy_app.command("erase")
def erase(
    issuing_state: Annotated[str, typer.Option(help="The document's issuing state (UTO).")],
    reason: Annotated[str, typer.Option(help="court_order or mistaken_enrolment.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> int:
    """Erase every record of the traveler holding a document, their data key included. The
    document number is read from standard input (or a prompt), never from the command line,
    so that it stays out of shell history and the process list."""
    from entryexit.bootstrap import build_erasure
    from entryexit.cli.reports import LOCAL_OPERATOR
    from entryexit.documents.identity import identify_document
    from entryexit.services.privacy import ERASURE_REASONS

    if reason not in ERASURE_REASONS:
        raise InvalidInputError(f"--reason is one of: {', '.join(ERASURE_REASONS)}")
    if sys.stdin.isatty():
        number = typer.prompt("document number", hide_input=True).strip()
    else:
        number = sys.stdin.readline().strip()
    document, _ = identify_document(None, issuing_state, number, date.today())
    if document is None:
        raise InvalidInputError("give the issuing state and the document number")
    if not yes and not typer.confirm("erase every record of this traveler? this cannot be undone"):
        typer.echo("nothing erased", err=True)
        return 1
    report = build_erasure(_records()).erase(LOCAL_OPERATOR, document, reason)
    typer.echo(
        json.dumps(
            {
                "traveler_id": report.traveler_id,
                "reason": report.reason,
                "erased": report.erased,
                "galleries_rebuilt": report.galleries_rebuilt,
            },
            indent=2,
        )
    )
    return 0
