"""Worst-case costs of hostile input: manifests (time) and images (time, peak RSS).

Each case runs in a fresh child process so that its peak RSS (``ru_maxrss``) is its own;
the RSS the child had just before the case (interpreter, libraries, face models) is printed
beside it. Times are the minimum of ``--repeats`` runs (the machine is shared: medians are
noisy), except that a case whose first run takes longer than 10 s is not repeated.

    .venv/bin/python benchmarks/bench_hostile.py                 # every case
    .venv/bin/python benchmarks/bench_hostile.py --case png_6300  # one case

Run against another checkout (the "before" figures) with ``PYTHONPATH=OTHER/src``.

Cases:
  paxlst_1mb_field   a PAXLST whose one NAD field is 1 MB
  paxlst_70000       a PAXLST listing 70,000 travelers
  png_6300           a 6300x6300 PNG capture (the issue's ~116 KB image), engine.analyse
  png_4096           a 4096x3072 PNG capture (the largest a gate frame may be now)
  jpeg_6300          a 6300x6300 JPEG capture
  concurrent_png_6300 / concurrent_png_4096
                     --concurrency (8) captures of that image at once through one engine
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

TODAY = date(2026, 11, 23)
CASES = (
    "paxlst_1mb_field",
    "paxlst_70000",
    "png_6300",
    "png_4096",
    "jpeg_6300",
    "concurrent_png_6300",
    "concurrent_png_4096",
)


def _rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(run: Callable[[], str], repeats: int) -> tuple[float, str]:
    best, outcome = float("inf"), ""
    for _ in range(repeats):
        start = time.perf_counter()
        outcome = run()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        if elapsed > 10:
            break
    return best, outcome


def _paxlst(travelers: int, field: int = 0) -> bytes:
    body = ["UNH+1+PAXLST:D:05B:UN:IATA", "BGM+745", "TDT+20+XY123+++XY"]
    if field:
        body.append("NAD+FL+++" + "A" * field + ":JANE")
    for index in range(travelers):
        body += [
            "NAD+FL+++DOE:JANE",
            "ATT+2++F",
            "DTM+329:19800101",
            "NAT+2+FRA",
            f"DOC+P:110:111+N{index:08d}",
            "DTM+36:20300101",
            "LOC+91+FRA",
        ]
    body.append(f"UNT+{len(body) + 1}+1")
    return "".join(f"{segment}'" for segment in body).encode()


def _parse(data: bytes) -> str:
    from entryexit.documents.paxlst import parse_paxlst
    from entryexit.errors import EntryExitError

    try:
        message = parse_paxlst(data, TODAY, "UTO")
    except EntryExitError as exc:
        return f"refused ({type(exc).__name__}: {exc.message[:70]})"
    return f"accepted {len(message.travelers)} travelers, {len(message.flagged)} flagged"


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 120, 110)).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    small.resize((width, height)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _engine():  # type: ignore[no-untyped-def]
    from entryexit.biometrics import EngineSettings, FaceEngine
    from entryexit.config import Settings

    return FaceEngine.from_model_dir(Settings().resolved_model_dir, EngineSettings(workers=2))


def _analyse(engine, data: bytes) -> str:  # type: ignore[no-untyped-def]
    from entryexit.errors import EntryExitError

    try:
        analysis = engine.analyse(data)
    except EntryExitError as exc:
        return f"{type(exc).__name__}: {exc.message[:60]}"
    return f"analysed {analysis.image_width}x{analysis.image_height}"


def run_case(case: str, repeats: int, concurrency: int) -> None:
    images = {"png_6300": (_png, 6300), "png_4096": (_png, 4096), "jpeg_6300": (_jpeg, 6300)}
    if case.startswith("paxlst"):
        data = _paxlst(70_000) if case == "paxlst_70000" else _paxlst(1, field=1_000_000)
        baseline = _rss_mib()
        seconds, outcome = _timed(lambda: _parse(data), repeats)
    elif case in images:
        make, side = images[case]
        data = make(side, 6300 if side == 6300 else 3072)
        engine = _engine()
        baseline = _rss_mib()
        seconds, outcome = _timed(lambda: _analyse(engine, data), repeats)
        outcome += f" ({len(data) // 1024} KiB)"
    else:
        name = case.removeprefix("concurrent_")
        make, side = images[name]
        data = make(side, 6300 if side == 6300 else 3072)
        engine = _engine()
        baseline = _rss_mib()
        outcomes: list[str] = []

        def one() -> None:
            outcomes.append(_analyse(engine, data))

        start = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
        outcome = f"{concurrency} at once: {sorted(set(outcomes))}"
    print(
        f"{case:22} {seconds * 1000:10.1f} ms  peak RSS {_peak_mib():7.0f} MiB"
        f" (before the case {baseline:5.0f} MiB)  {outcome}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.repeats, args.concurrency)
        return
    import entryexit

    print(f"entryexit from {Path(entryexit.__file__).parent}; min of {args.repeats} runs")
    for case in CASES:
        subprocess.run(  # noqa: S603 - this script, run again with one of its own cases
            [
                sys.executable,
                __file__,
                "--case",
                case,
                "--repeats",
                str(args.repeats),
                "--concurrency",
                str(args.concurrency),
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
