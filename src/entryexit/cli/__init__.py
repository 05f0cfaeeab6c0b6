"""The ``entryexit`` command line: thin commands over the services.

Every deliberate failure is an :class:`~entryexit.errors.EntryExitError`; ``main`` turns it
into one line on standard error and exit status 2.
"""

from __future__ import annotations

import logging
import sys

import click
import typer

from entryexit.cli import audit as audit_commands
from entryexit.cli import backup as backup_commands
from entryexit.cli import compare as compare_command
from entryexit.cli import documents as document_commands
from entryexit.cli import evaluate as evaluate_commands
from entryexit.cli import manifests as manifest_commands
from entryexit.cli import models as models_commands
from entryexit.cli import privacy as privacy_commands
from entryexit.cli import reports as report_commands
from entryexit.cli import serve as serve_commands
from entryexit.cli import simulate as simulate_commands
from entryexit.cli import users as user_commands
from entryexit.cli import worker as worker_commands
from entryexit.errors import EntryExitError

EXIT_ERROR = 2

app = typer.Typer(
    name="entryexit",
    help="EntryExit: biometric entry/exit verification for ports of entry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_commands.app, name="models")
app.add_typer(evaluate_commands.app, name="evaluate")
app.command("compare")(compare_command.compare)
app.command("serve")(serve_commands.serve)
app.command("worker")(worker_commands.worker)
app.command("mrz")(document_commands.mrz)
app.add_typer(serve_commands.keys_app, name="keys")
app.add_typer(simulate_commands.app, name="simulate")
app.add_typer(audit_commands.app, name="audit")
app.add_typer(backup_commands.app, name="backup")
app.add_typer(privacy_commands.policy_app, name="policy")
app.command("purge")(privacy_commands.purge)
app.add_typer(privacy_commands.privacy_app, name="privacy")
app.add_typer(manifest_commands.app, name="manifest")
app.add_typer(user_commands.app, name="users")
app.add_typer(report_commands.app, name="report")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = app(args=argv, standalone_mode=False, prog_name="entryexit")
    except EntryExitError as exc:
        print(f"entryexit: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except (click.exceptions.Abort, typer.Abort):
        print("entryexit: aborted", file=sys.stderr)
        return 1
    except (click.ClickException, typer.TyperException) as exc:
        # Typer carries its own copy of click: a mistyped command raises its UsageError, which
        # is not click's; either is a usage line and exit status 2, never a traceback.
        exc.show()  # type: ignore[union-attr]
        return int(getattr(exc, "exit_code", EXIT_ERROR))
    return result if isinstance(result, int) else 0
