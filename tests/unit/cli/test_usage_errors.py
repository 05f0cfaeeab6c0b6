"""A mistyped command line is a usage message and exit status 2, never a traceback."""

from __future__ import annotations

import pytest

from entryexit.cli import main


@pytest.mark.parametrize(
    "argv",
    [["manifests", "export", "X"], ["keys", "create", "--no-such-option"], ["--bogus"]],
    ids=["unknown-command", "unknown-option", "unknown-global-option"],
)
def test_a_mistyped_command_is_a_usage_line_and_status_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Usage:" in err or "Error:" in err
