"""``entryexit policy show|load|list`` and ``entryexit purge``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from entryexit.bootstrap import build_key_provider, build_store, utc_now
from entryexit.cli._common import load_settings, read_input_file
from entryexit.services.audit import AuditTrail
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import SHIPPED_POLICIES, PolicyService, shipped_policy_text
from entryexit.services.privacy import PurgeService

policy_app = typer.Typer(
    help="Capture and retention policies (versioned data).", no_args_is_help=True
)


def _services() -> tuple[PolicyService, AuditTrail, GalleryService]:
    settings = load_settings()
    keys = build_key_provider(settings)
    store = build_store(settings, keys)
    audit = AuditTrail(store, utc_now, keys)
    policies = PolicyService(store, utc_now, audit)
    policies.ensure_default()
    # The purge needs no face model: templates are bytes to it.
    galleries = GalleryService(store, utc_now, "", 0, policies=policies, audit=audit)
    return policies, audit, galleries


@policy_app.command("list")
def list_policies() -> int:
    """Every loaded policy version, and which one is in force now."""
    policies, _, _ = _services()
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
    policies, _, _ = _services()
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
    policies, _, _ = _services()
    policy, added = policies.load(text)
    verb = "loaded" if added else "already loaded:"
    typer.echo(f"{verb} {policy.version}, effective {policy.effective_from.isoformat()}")
    return 0


def purge() -> int:
    """Delete every item whose retention has ended, and record how many of each kind."""
    settings = load_settings()
    keys = build_key_provider(settings)
    store = build_store(settings, keys)
    audit = AuditTrail(store, utc_now, keys)
    galleries = GalleryService(store, utc_now, "", 0)
    counts = PurgeService(store, utc_now, audit, galleries).run()
    typer.echo(json.dumps(counts))
    return 0
