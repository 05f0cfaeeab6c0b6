"""``entryexit users create|disable``: people who sign in to the officer console."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from entryexit.cli._common import load_settings
from entryexit.domain.access import Role
from entryexit.errors import InvalidInputError

app = typer.Typer(help="Console accounts for people (gates use API keys).", no_args_is_help=True)

PASSWORD_VARIABLE = "ENTRYEXIT_NEW_USER_PASSWORD"  # noqa: S105 - the name of a variable


@app.command("create")
def create(
    username: Annotated[str, typer.Option(help="Sign-in name (a-z, 0-9, '.', '_', '-').")],
    role: Annotated[Role, typer.Option(help="officer, supervisor, auditor or admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> int:
    """Create a console account. The password is asked for twice (or read from standard input
    with --password-stdin, or from ENTRYEXIT_NEW_USER_PASSWORD for automation); only its
    argon2 hash is stored."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get(PASSWORD_VARIABLE):
        password = os.environ[PASSWORD_VARIABLE]
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        raise InvalidInputError(
            f"no password: use --password-stdin or {PASSWORD_VARIABLE} when not at a terminal"
        )
    from entryexit.bootstrap import build_records

    accounts = build_records(load_settings()).accounts
    user = accounts.create_user(username.strip().lower(), password, role)
    typer.echo(f"created console user {user.username} ({user.role.value}); sign in at /console")
    return 0


@app.command("disable")
def disable(
    username: Annotated[str, typer.Argument(help="The account's sign-in name.")],
) -> int:
    """Disable a console account: its sessions end at once and it cannot sign in again."""
    from entryexit.bootstrap import build_records

    build_records(load_settings()).accounts.disable(username.strip().lower())
    typer.echo(f"disabled console user {username.strip().lower()}")
    return 0
