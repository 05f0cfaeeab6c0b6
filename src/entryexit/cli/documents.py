"""``entryexit mrz``: read a machine-readable zone."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

from entryexit.documents.mrz import parse_mrz


def mrz(
    lines: Annotated[list[str], typer.Argument(help="The MRZ lines (2 or 3), each quoted.")],
) -> int:
    """Parse an ICAO 9303 MRZ (TD1, TD2, TD3, MRV-A, MRV-B), verify every check digit and print
    its fields as JSON."""
    typer.echo(json.dumps(parse_mrz(lines, date.today()).as_dict(), indent=2))
    return 0
