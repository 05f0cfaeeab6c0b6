"""The command line starts without loading the face engine, the web framework or the database
layer: `entryexit --help` and `entryexit mrz` answer at once."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("cv2", "onnxruntime", "fastapi", "sqlalchemy", "alembic", "faiss", "matplotlib")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys; {code}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return [name for name in result.stdout.strip().split(",") if name]


def test_loading_the_command_line_loads_nothing_heavy() -> None:
    assert loaded_after("import entryexit.cli") == []


def test_reading_an_mrz_loads_nothing_heavy() -> None:
    code = (
        "from typer.testing import CliRunner; from entryexit.cli import app; "
        "r = CliRunner().invoke(app, ['mrz', 'P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<',"
        " 'L898902C36UTO7408122F1204159ZE184226B<<<<<10']); assert r.exit_code == 0, r.output"
    )
    assert loaded_after(code) == []
