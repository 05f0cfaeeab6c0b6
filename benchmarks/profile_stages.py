"""Where a capture's CPU goes: py-spy's raw (collapsed) samples of the service, bucketed by
stage, from bytes received to response sent.

py-spy samples only threads that are running (``--idle`` off), so the shares are of CPU, and
hardly move when other processes share the machine. ``bench_service.py --py-spy DIR`` records
the files; this reads them:

    .venv/bin/python benchmarks/profile_stages.py DIR/1-client.txt [DIR/4-clients.txt ...]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

# Leaf first, the first frame that names a stage decides; more specific names come first.
# Each entry: (stage, text found in a frame "function (module/path.py:line)").
STAGES: tuple[tuple[str, str], ...] = (
    # Threads parked on a lock, a queue or the selector, or waiting for the GIL after a
    # system call: py-spy counts them as active, but they use no CPU.
    ("waiting (locks, queues, selector)", "Condition.wait ("),
    ("waiting (locks, queues, selector)", "EpollSelector.select ("),
    ("waiting (locks, queues, selector)", "Semaphore.acquire ("),
    ("thread hand-off to the event loop", "_write_to_self ("),
    ("thread hand-off to the event loop", "Condition.notify ("),
    ("model: decode", "decode_image ("),
    ("model: mirror detection", "_mirror_crop ("),
    ("model: detect", "detect (entryexit/biometrics/detect.py"),
    ("model: align", "align_face ("),
    ("model: quality", "assess_quality ("),
    ("model: embed", "embed (entryexit/biometrics/"),
    ("search: 1:N", "similarity_matrix ("),
    ("search: 1:N", "identify ("),
    ("search: watchlist", "capture_hits ("),
    ("record: audit chain", "entryexit/services/audit.py"),
    ("record: audit chain", "repositories/audit.py"),
    ("record: open-alert read", "has_open_alert ("),
    ("record: traveler profile read", "profile (entryexit/adapters"),
    ("record: admission hand-off", "enqueue (entryexit/services/crossings.py"),
    ("record: encounter", "add_encounter ("),
    ("record: capture row + sealing", "add_capture ("),
    ("record: commit (fsync)", "commit ("),
    ("record: other", "_record ("),
    ("prepare: flight read", "get (entryexit/services/flights.py"),
    ("prepare: gallery", "gallery_for ("),
    ("prepare: policy", "in_force ("),
    ("prepare: other", "_prepare ("),
    ("model: other", "analyse ("),
    ("capture service: other", "process_burst ("),
    ("request: multipart parsing", "formparsers.py"),
    ("request: multipart parsing", "multipart"),
    ("request: upload read", "datastructures.py"),
    ("request: authentication", "entryexit/api/deps.py"),
    ("request: authentication", "entryexit/api/permissions.py"),
    ("response: validation + JSON", "serialize_response ("),
    ("response: validation + JSON", "pydantic"),
    ("request: FastAPI routing + dependencies", "fastapi/"),
    ("request: middleware + logging", "entryexit/api/"),
    ("request: middleware + logging", "entryexit/web/"),
    ("request: Starlette", "starlette/"),
    ("HTTP server (uvicorn, h11/httptools)", "uvicorn/"),
    ("HTTP server (uvicorn, h11/httptools)", "h11/"),
    ("event loop + threads", "asyncio/"),
    ("event loop + threads", "anyio/"),
    ("event loop + threads", "threading.py"),
    ("garbage collection", "<gc>"),
)


def stage_of(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for stage, marker in STAGES:
            if marker in frame:
                return stage
    return "other"


def tally(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if stack and number.isdigit():
            counts[stage_of(stack)] += int(number)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--captures", type=int, default=0, help="Captures the file covers.")
    parser.add_argument("--rate", type=int, default=200, help="py-spy's samples per second.")
    parser.add_argument(
        "--cpu-ms",
        type=float,
        nargs="*",
        help="The service's measured CPU a capture during each file's run (in ms).",
    )
    args = parser.parse_args()
    print_stages(args.files, args.captures, args.rate, args.cpu_ms)
    return 0


def print_stages(
    files: list[Path], captures: int, rate: int, cpu_ms: list[float] | None = None
) -> None:
    """Shares of the samples by stage; with ``cpu_ms`` (the service's measured CPU a
    capture, one per file), the working samples' shares of it in ms."""
    for number, path in enumerate(files):
        counts = tally(path)
        waiting = counts.pop("waiting (locks, queues, selector)", 0)
        total = sum(counts.values())
        print(f"\n{path.name}: {total} working samples ({waiting} more waiting)")
        groups: Counter[str] = Counter()
        for stage, count in counts.most_common():
            groups[stage.split(":")[0]] += count
            if cpu_ms:
                per_capture = f"  {count / total * cpu_ms[number]:6.2f} ms CPU a capture"
            elif captures:
                per_capture = f"  {count / rate / captures * 1000:6.2f} ms sampled a capture"
            else:
                per_capture = ""
            print(f"  {stage:42} {100 * count / total:5.1f}%{per_capture}")
        outside = total - groups["model"]
        print(f"  -- outside the models: {100 * outside / total:.1f}% of the service's CPU")


if __name__ == "__main__":
    sys.exit(main())
