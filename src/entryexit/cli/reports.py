"""``entryexit report overstays``."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Literal

import typer

from entryexit.cli._common import load_settings
from entryexit.domain.access import Principal, Role
from entryexit.errors import InvalidInputError

app = typer.Typer(help="Reports for officers and managers.", no_args_is_help=True)

# Whoever can run commands on the server acts with full rights; the audit log says it was here.
LOCAL_OPERATOR = Principal("local-cli", "command line on the server", Role.ADMIN)


@app.command("overstays")
def overstays(
    as_of: Annotated[str, typer.Option("--as-of", help="Report as of this day (YYYY-MM-DD).")],
    output_format: Annotated[
        str, typer.Option("--format", help="json (everything) or csv (overstay rows).")
    ] = "json",
) -> int:
    """In-country and out-of-country overstays, exit confirmation rates and exits without an
    entry, as of a day."""
    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        raise InvalidInputError(f"--as-of must be a date like 2026-12-31, not {as_of!r}") from None
    if output_format not in ("json", "csv"):
        raise InvalidInputError("--format is json or csv")
    chosen: Literal["json", "csv"] = "csv" if output_format == "csv" else "json"
    from entryexit.bootstrap import build_services
    from entryexit.services.formats import overstay_csv, overstay_json

    services = build_services(load_settings())
    report = services.crossings.overstays(LOCAL_OPERATOR, day)
    if chosen == "csv":
        typer.echo(overstay_csv(report), nl=False)
        return 0
    typer.echo(json.dumps(overstay_json(report), indent=2))
    return 0
