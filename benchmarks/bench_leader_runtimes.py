"""LEADER's cost under ONNX Runtime and OpenVINO, on one core, on the same prints (issue 20).

    .venv/bin/pip install openvino==2026.4.1      # optional: not a project dependency
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_leader_runtimes.py \\
        --data ../shared/data/fvc2002-b --per-db 10 --rounds 2

Every print is decoded once and cut to its ridge area plus 32 px, padded as ``leader-mcc-v2``
pads it (``_leader``); then every runtime runs the network on it in turn, so a shared
machine's load falls on all alike. Runtimes: ONNX Runtime on the exported graph and on the
fused one (``_leader_graph``, what ``leader-mcc-v2`` runs), and, if ``openvino`` is installed,
OpenVINO on both with ``INFERENCE_NUM_THREADS=1``. OpenVINO's shape inference fails on the
export's nearest-neighbour upsampling (``Repeat``: Tile then Reshape) with free height and
width, so it is compiled once for each padded input size and the compiled network reused;
its compile time is reported apart. ``--model`` adds any other ONNX file (e.g. an
``onnxslim`` output) under ONNX Runtime.

Reported per runtime: the median CPU time (``process_time``) per inference over the prints,
each round's median and the smallest; the largest difference of the detection score (output
channel 3, threshold 0.55) from ONNX Runtime on the fused graph and how many pixels cross
the threshold between them; and, as the check that one core is used, how many of the
process's threads accumulated CPU time during that runtime's inferences (``/proc``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import importlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from entryexit.biometrics.fingerprints import _leader, _segment, decode_fingerprint
from entryexit.biometrics.fingerprints._install import verified_leader
from entryexit.biometrics.fingerprints._leader_graph import fused_leader_model

PPI = {"DB1_B": 500.0, "DB2_B": 569.0, "DB3_B": 500.0, "DB4_B": 500.0}
Tensor = npt.NDArray[np.float32]
Runner = Callable[[Tensor], Tensor]


def network_input(pixels: npt.NDArray[np.uint8]) -> Tensor:
    """The tensor ``leader-mcc-v2`` gives the network for ``pixels``."""
    background = float(pixels[0, 0])
    box = _segment.ridge_box(pixels, _leader.CROP_MARGIN)
    if box is not None:
        top, bottom, left, right = box
        pixels = pixels[top:bottom, left:right]
    height, width = pixels.shape
    padded_h = -(-height // _leader.MULTIPLE) * _leader.MULTIPLE
    padded_w = -(-width // _leader.MULTIPLE) * _leader.MULTIPLE
    canvas = np.full((padded_h, padded_w), background, dtype=np.float32)
    top, left = (padded_h - height) // 2, (padded_w - width) // 2
    canvas[top : top + height, left : left + width] = pixels
    return canvas[np.newaxis, :, :, np.newaxis]


def onnxruntime_runner(graph: str | bytes) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def run(tensor: Tensor) -> Tensor:
        return np.asarray(session.run(None, {"input": tensor})[0], dtype=np.float32)

    return run


def openvino_runner(ov: Any, path: Path, compile_ms: list[float]) -> Runner:
    core = ov.Core()
    base = core.read_model(str(path))
    config = {
        "INFERENCE_NUM_THREADS": 1,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",  # AVX2 only here: no bf16 or f16 arithmetic
    }
    requests: dict[tuple[int, ...], Any] = {}

    def run(tensor: Tensor) -> Tensor:
        request = requests.get(tensor.shape)
        if request is None:
            start = time.process_time()
            model = base.clone()
            model.reshape({0: ov.PartialShape(list(tensor.shape))})
            request = core.compile_model(model, "CPU", config).create_infer_request()
            requests[tensor.shape] = request
            compile_ms.append((time.process_time() - start) * 1000.0)
        request.infer({0: tensor})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)

    return run


def thread_ticks() -> dict[str, int]:
    """CPU clock ticks (user + system) of each of this process's threads."""
    ticks: dict[str, int] = {}
    for thread in Path("/proc/self/task").iterdir():
        try:
            fields = (thread / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[thread.name] = int(fields[11]) + int(fields[12])
    return ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fvc2002-b"))
    parser.add_argument("--per-db", type=int, default=10, help="prints per database")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", type=Path, action="append", default=[])
    args = parser.parse_args()

    exported = verified_leader()
    fused = fused_leader_model(exported.read_bytes())
    runners: dict[str, Runner] = {
        "onnxruntime, fused graph (leader-mcc-v2)": onnxruntime_runner(fused),
        "onnxruntime, exported graph": onnxruntime_runner(str(exported)),
    }
    for extra in args.model:
        runners[f"onnxruntime, {extra.name}"] = onnxruntime_runner(str(extra))
    compile_ms: dict[str, list[float]] = {}
    scratch = tempfile.TemporaryDirectory()  # OpenVINO reads the fused graph from a file
    try:
        ov: Any = importlib.import_module("openvino")
    except ImportError:
        print("openvino is not installed: ONNX Runtime only")
    else:
        fused_path = Path(scratch.name) / "leader-fused.onnx"
        fused_path.write_bytes(fused)
        for label, path in (("fused graph", fused_path), ("exported graph", exported)):
            name = f"openvino {ov.__version__.split('-')[0]}, {label}"
            compile_ms[name] = []
            runners[name] = openvino_runner(ov, path, compile_ms[name])
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}")

    tensors = [
        network_input(decode_fingerprint(path.read_bytes(), ppi).pixels)
        for db, ppi in PPI.items()
        for path in sorted((args.data / db).glob("*.tif"))[: args.per_db]
    ]
    reference = next(iter(runners))
    first: dict[str, list[Tensor]] = {name: [] for name in runners}
    for tensor in tensors:  # a first pass: outputs to compare, and OpenVINO's compilations
        for name, run in runners.items():
            first[name].append(run(tensor)[0])
    medians: dict[str, list[float]] = {name: [] for name in runners}
    threads: dict[str, dict[str, int]] = {name: {} for name in runners}
    for _ in range(args.rounds):
        cpu: dict[str, list[float]] = {name: [] for name in runners}
        for tensor in tensors:
            for name, run in runners.items():
                before = thread_ticks()
                start = time.process_time()
                run(tensor)
                cpu[name].append((time.process_time() - start) * 1000.0)
                for thread, ticks in thread_ticks().items():
                    spent = ticks - before.get(thread, 0)
                    threads[name][thread] = threads[name].get(thread, 0) + spent
        for name in runners:
            medians[name].append(statistics.median(cpu[name]))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{len(tensors)} prints, {args.rounds} rounds, one thread; load average {load}")
    print("runtime | CPU ms (min of medians) | medians | max score diff | flipped | threads busy")
    for name in runners:
        score_diff = max(
            float(np.abs(a[..., 3] - b[..., 3]).max())
            for a, b in zip(first[reference], first[name], strict=True)
        )
        flipped = sum(
            int(np.count_nonzero((a[..., 3] >= 0.55) != (b[..., 3] >= 0.55)))
            for a, b in zip(first[reference], first[name], strict=True)
        )
        busy = sum(1 for ticks in threads[name].values() if ticks > 0)
        rounds = ", ".join(f"{value:.1f}" for value in medians[name])
        print(
            f"{name} | {min(medians[name]):.1f} | {rounds} | {score_diff:.1e} | {flipped} | {busy}"
        )
    for name, times in compile_ms.items():
        if times:
            print(
                f"{name}: {len(times)} compilations (one per input size),"
                f" median {statistics.median(times):.0f} ms CPU each"
            )
    scratch.cleanup()


if __name__ == "__main__":
    main()
