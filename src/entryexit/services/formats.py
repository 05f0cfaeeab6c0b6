"""How reports are written out: one formatter per format, used by the API, the CLI and the
console alike (none of them formats a report of its own)."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from entryexit.documents.csv_safety import neutralise_row
from entryexit.documents.manifest import FIELDS, OPTIONAL_FIELDS, traveler_row
from entryexit.domain.model import ManifestTraveler

OVERSTAY_COLUMNS = (
    "kind",
    "traveler_ref",
    "surname",
    "given_names",
    "nationality",
    "document",
    "admission_class",
    "admitted_on",
    "admitted_until",
    "exited_on",
    "days_over",
)


def plain(record: Any) -> dict[str, Any]:
    """A dataclass as JSON-ready fields (dates and times in ISO 8601)."""
    return {
        k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in asdict(record).items()
    }


def overstay_json(report: dict[str, Any]) -> dict[str, Any]:
    """The overstay report with its rows as plain fields (API and CLI JSON)."""
    return {
        **report,
        "in_country": [plain(r) for r in report["in_country"]],
        "out_of_country": [plain(r) for r in report["out_of_country"]],
    }


def overstay_csv(report: dict[str, Any]) -> str:
    """The report's overstay rows, in-country then out-of-country, one CSV line each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    # Names are data from manifests: a cell that a spreadsheet would run as a formula is
    # written as text.
    writer.writerow(neutralise_row(OVERSTAY_COLUMNS))
    for kind in ("in_country", "out_of_country"):
        for row in report[kind]:
            values = plain(row)
            writer.writerow(
                neutralise_row(
                    [kind, *("" if values[c] is None else values[c] for c in OVERSTAY_COLUMNS[1:])]
                )
            )
    return buffer.getvalue()


MANIFEST_COLUMNS = (*FIELDS, *OPTIONAL_FIELDS)


def manifest_csv(travelers: list[ManifestTraveler]) -> str:
    """A manifest as CSV, one traveler a line, in the columns a CSV manifest upload reads.
    Names come from carriers' manifests, which accept ``=1+1`` or ``@X`` as a surname: a cell
    a spreadsheet would run as a formula is written as text (a leading ``'``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(neutralise_row(MANIFEST_COLUMNS))
    for traveler in travelers:
        row = traveler_row(traveler)
        writer.writerow(neutralise_row([row.get(column, "") for column in MANIFEST_COLUMNS]))
    return buffer.getvalue()
