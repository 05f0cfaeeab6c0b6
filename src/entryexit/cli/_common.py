"""Helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from entryexit.config import Settings
from entryexit.errors import ConfigurationError, InvalidInputError


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"ENTRYEXIT_{'__'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


def read_input_file(path: Path, what: str) -> bytes:
    """Read a user-named file, turning OS errors into a one-line reason."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror}") from None
