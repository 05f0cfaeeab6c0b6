"""``entryexit policy show|load|list`` and ``entryexit purge``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from entryexit.cli._common import load_settings, read_input_file
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
