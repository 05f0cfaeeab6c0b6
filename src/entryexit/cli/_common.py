"""Helpers shared by the commands."""

from __future__ import annotations

import stat
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


# Larger than any photo, manifest, policy or checkpoint file the commands take: a bound on
# what a mistaken argument (a disk image, /dev/zero) makes the command hold in memory.
MAX_INPUT_BYTES = 256 * 1024 * 1024


def read_input_file(path: Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """Read a user-named regular file of at most ``max_bytes``, turning OS errors into a
    one-line reason; never reads more than ``max_bytes`` + 1 bytes of it."""
    try:
        # Checked before opening: opening a FIFO would wait for a writer.
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if not stat.S_ISREG(mode):
            raise InvalidInputError(f"{what} {path} is not a regular file")
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InvalidInputError(f"{what} {path} is larger than {max_bytes} bytes")
        return data
    except FileNotFoundError:
        raise InvalidInputError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror}") from None
