"""``entryexit manifest parse|export``."""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from entryexit.cli._common import load_settings, read_input_file
from entryexit.documents.manifest import parse_csv_manifest, parse_json_manifest, traveler_row
from entryexit.documents.paxlst import export_paxlst, parse_paxlst

app = typer.Typer(help="Read and write passenger manifests.", no_args_is_help=True)


class ManifestFormat(StrEnum):
    PAXLST = "paxlst"
    JSON = "json"
    CSV = "csv"


@app.command("parse")
def parse(
    file: Annotated[Path, typer.Argument(help="A manifest: PAXLST (EDIFACT), JSON or CSV.")],
    format: Annotated[
        ManifestFormat | None, typer.Option("--format", help="Default: from the content.")
    ] = None,
) -> int:
    """Print a manifest's travelers as JSON (and, for PAXLST, the travelers it flags)."""
    data = read_input_file(file, "manifest")
    kind = format or _detect(data)
    today = date.today()
    home_state = load_settings().home_state
    if kind is ManifestFormat.PAXLST:
        message = parse_paxlst(data, today, home_state)
        typer.echo(json.dumps(message.as_dict(), indent=2))
        return 0
    if kind is ManifestFormat.JSON:
        travelers = parse_json_manifest(data, today, home_state)
    else:
        travelers = parse_csv_manifest(data, today, home_state)
    typer.echo(json.dumps([traveler_row(t) for t in travelers], indent=2))
    return 0


@app.command("export")
def export(
    flight_id: Annotated[str, typer.Argument(help="The flight whose manifest to write.")],
    format: Annotated[ManifestFormat, typer.Option("--format")] = ManifestFormat.PAXLST,
) -> int:
    """Write a flight's manifest (PAXLST D05B, or JSON) to standard output."""
    from entryexit.bootstrap import build_records

    flights = build_records(load_settings()).flights
    flight = flights.get(flight_id)
    travelers = flights.manifest_travelers(flight_id)
    if format is ManifestFormat.PAXLST:
        typer.echo(
            export_paxlst(
                flight.carrier,
                flight.number,
                flight.origin,
                flight.destination,
                flight.scheduled_departure.date(),
                travelers,
            ),
            nl=False,
        )
    else:
        typer.echo(json.dumps({"travelers": [traveler_row(t) for t in travelers]}, indent=2))
    return 0


def _detect(data: bytes) -> ManifestFormat:
    head = data.lstrip(b"\xef\xbb\xbf \r\n\t")[:3]
    if head in (b"UNA", b"UNB", b"UNH"):
        return ManifestFormat.PAXLST
    if head[:1] in (b"{", b"["):
        return ManifestFormat.JSON
    return ManifestFormat.CSV
