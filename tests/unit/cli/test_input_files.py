"""A file named on the command line is read within a bound, or refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from entryexit.cli._common import read_input_file
from entryexit.errors import InvalidInputError


def test_a_device_or_fifo_is_refused_without_reading_it(tmp_path: Path) -> None:
    # /dev/zero would be read until memory runs out; a FIFO would block on open.
    with pytest.raises(InvalidInputError, match="not a regular file"):
        read_input_file(Path("/dev/zero"), "photo")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        read_input_file(fifo, "manifest")


def test_a_file_over_the_bound_is_refused_and_one_within_it_read(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(InvalidInputError, match="larger than 1000 bytes"):
        read_input_file(big, "photo", max_bytes=1000)
    assert read_input_file(big, "photo", max_bytes=1001) == b"x" * 1001


def test_missing_files_and_directories_keep_their_reasons(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_input_file(tmp_path / "nothing", "photo")
    with pytest.raises(InvalidInputError, match="is a directory"):
        read_input_file(tmp_path, "photo")
