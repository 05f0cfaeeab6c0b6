"""``entryexit simulate boarding``: the demo, through the real HTTP API."""

from __future__ import annotations

import contextlib
import json
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from entryexit.cli._common import load_settings
from entryexit.errors import ConfigurationError

app = typer.Typer(help="Drive the service with simulated travelers.", no_args_is_help=True)


@contextlib.contextmanager
def in_process_server() -> Iterator[tuple[str, str]]:
    """Start the real service on a free loopback port with a scratch SQLite database."""
    from entryexit.adapters.crypto.keys import FileKeyProvider
    from entryexit.api.app import create_app
    from entryexit.bootstrap import build_services
    from entryexit.cli.serve import served_in_thread

    with tempfile.TemporaryDirectory(prefix="entryexit-simulate-") as scratch:
        base = load_settings()
        settings = base.model_copy(
            update={
                # Scratch keys beside (never inside) the scratch data, and never the user's own.
                "data_dir": Path(scratch) / "data",
                "key_dir": Path(scratch) / "keys",
                "database_url": None,
                "model_dir": base.resolved_model_dir,
            }
        )
        FileKeyProvider(settings.resolved_key_dir).initialise()
        services = build_services(settings)
        token = services.keys.create_first_admin()
        if token is None:
            raise ConfigurationError("the scratch database unexpectedly already has keys")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with served_in_thread(create_app(services), "127.0.0.1", port):
            yield f"http://127.0.0.1:{port}", token


@app.command("boarding")
def boarding(
    data: Annotated[Path, typer.Option(help="Folder of labelled photos (person/image).")],
    travelers: Annotated[int, typer.Option(help="Travelers on the manifest.", min=2)] = 300,
    impostors: Annotated[
        int, typer.Option(help="People not on the manifest who try to board.", min=0)
    ] = 30,
    captures_per_traveler: Annotated[
        int, typer.Option(help="At most this many gate captures per traveler.", min=1)
    ] = 10,
    clients: Annotated[int, typer.Option(help="Concurrent gate clients.", min=1)] = 4,
    seed: Annotated[int, typer.Option(help="Seed for choosing travelers.")] = 0,
    manifest_format: Annotated[
        str, typer.Option(help="Send the manifest as json or paxlst (UN/EDIFACT).")
    ] = "json",
    url: Annotated[
        str | None, typer.Option(help="A running service (default: start one in-process).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="ENTRYEXIT_API_KEY", help="Admin or officer key for --url.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> int:
    """Create a flight from labelled photos and board it through the HTTP API."""
    if manifest_format not in ("json", "paxlst"):
        raise typer.BadParameter("--manifest-format is json or paxlst")
    from tqdm import tqdm

    from entryexit.evaluation.boarding import BoardingPlan, run_boarding

    plan = BoardingPlan(
        data, travelers, impostors, captures_per_traveler, clients, seed, manifest_format
    )
    if url is not None and not api_key:
        raise ConfigurationError(
            "--url needs an admin or officer key (--api-key or ENTRYEXIT_API_KEY)"
        )
    server = contextlib.nullcontext((url, api_key or "")) if url else in_process_server()
    with server as (base_url, key), tqdm(desc="boarding", unit="capture", disable=None) as bar:
        result = run_boarding(
            plan,
            str(base_url),
            str(key),
            on_total=lambda n: setattr(bar, "total", n),
            on_progress=bar.update,
        )
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return 0
    latency = summary["latency_ms"]
    rows = [
        ("travelers", f"{result.enrolled} enrolled and staged"),
        (
            "captures",
            f"{result.captures}: {result.mated} mated, {result.non_mated} not on manifest",
        ),
        ("match rate", f"{summary['match_rate'] * 100:.2f}% of mated captures"),
        (
            "false accepts",
            f"{summary['false_accepts']} ({summary['false_accept_rate'] * 100:.2f}% of captures;"
            f" FPIR {summary['fpir'] * 100:.2f}%;"
            f" mated matched to another traveler {summary['misidentified_mated']})",
        ),
        ("no-matches", str(result.no_match)),
        ("recaptures", str(result.recapture)),
        (
            "latency",
            f"p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms,"
            f" p99 {latency['p99']:.1f} ms",
        ),
        ("throughput", f"{summary['captures_per_minute']:.0f} travelers/minute, {clients} clients"),
    ]
    for label, value in rows:
        typer.echo(f"{label:18}{value}")
    typer.echo(f"gallery staged in {summary['staging_seconds'] * 1000:.0f} ms")
    return 0
