"""``entryexit manifest parse|export|conflicts|resolve``."""

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
from entryexit.domain.model import ManifestConflict, ManifestTraveler

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
    """Write a flight's manifest (PAXLST D05B, JSON or CSV) to standard output."""
    from entryexit.bootstrap import build_records
    from entryexit.services.formats import manifest_csv

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
    elif format is ManifestFormat.CSV:
        typer.echo(manifest_csv(travelers), nl=False)
    else:
        typer.echo(json.dumps({"travelers": [traveler_row(t) for t in travelers]}, indent=2))
    return 0


class ConflictAnswer(StrEnum):
    KEPT = "kept"
    PROPOSED = "proposed"


@app.command("conflicts")
def conflicts(
    all_: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
) -> int:
    """List manifest conflicts as JSON: details a carrier's manifest brought for a document
    whose details another carrier (or the agency) set first, not applied until resolved."""
    from entryexit.bootstrap import build_records

    found = build_records(load_settings()).flights.manifest_conflicts(open_only=not all_)
    typer.echo(json.dumps([_conflict_row(c) for c in found], indent=2))
    return 0


@app.command("resolve")
def resolve(
    conflict_id: Annotated[str, typer.Argument(help="The conflict's id (from `conflicts`).")],
    apply: Annotated[
        ConflictAnswer,
        typer.Option("--apply", help="kept: the details in force stay; proposed: replace them."),
    ],
) -> int:
    """Resolve a manifest conflict (audited, as done by an administrator at the CLI)."""
    from entryexit.bootstrap import build_records
    from entryexit.domain.model import ConflictSide

    flights = build_records(load_settings()).flights
    conflict = flights.resolve_manifest_conflict(conflict_id, ConflictSide(apply.value))
    typer.echo(f"conflict {conflict.id}: {apply.value} (proposed by {conflict.proposed_by})")
    return 0


def _conflict_row(conflict: ManifestConflict) -> dict[str, object]:
    def side(traveler: ManifestTraveler | None) -> dict[str, str] | None:
        return None if traveler is None else traveler_row(traveler)

    return {
        "id": conflict.id,
        "flight_id": conflict.flight_id,
        "proposed_by": conflict.proposed_by,
        "held_by": conflict.held_by,
        "created_at": conflict.created_at.isoformat(),
        "resolution": conflict.resolution.value if conflict.resolution else None,
        "kept": side(conflict.kept),
        "proposed": side(conflict.proposed),
    }


def _detect(data: bytes) -> ManifestFormat:
    head = data.lstrip(b"\xef\xbb\xbf \r\n\t")[:3]
    if head in (b"UNA", b"UNB", b"UNH"):
        return ManifestFormat.PAXLST
    if head[:1] in (b"{", b"["):
        return ManifestFormat.JSON
    return ManifestFormat.CSV
