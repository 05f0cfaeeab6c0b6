"""SFace in int8 against the float model the engine runs (issue 17: "an int8 SFace as an option
only, with its accuracy and speed measured").

    .venv/bin/python benchmarks/bench_sface_int8.py --data ../shared/data/lfw-dev \\
        [--calibration 200] [--crops 300]

The float model is the installed SFace (verified by the engine's loader). Its weights are
listed as graph inputs, which stops onnxruntime from folding them, so they are taken out of
the inputs first, the batch dimension is freed and the graph is converted to opset 13 (for
per-channel QDQ). Then two int8 versions are made with ``onnxruntime.quantization``: dynamic
(weights int8, activations quantised at run time) and static QDQ (per-channel int8 weights,
uint8 activations, calibrated on aligned crops of the first ``--calibration`` persons of a
seeded shuffle). Agreement is measured on the crops of *other* persons (``--crops``):

- the cosine between each crop's float embedding and the int8 one (1.0: identical);
- how often a crop's nearest neighbour among the others is the same under both.

Speed: CPU time (``process_time``) of one forward pass over two crops (a capture's face and
mirror) on one thread, the median of 40 after a warm-up, for OpenCV's DNN on the float model
(what the engine runs), onnxruntime on the float model and on each int8 one, and OpenCV's DNN
on the QDQ model where it loads it. A benchmark, not a test: it reports.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from entryexit.biometrics import FaceEngine
from entryexit.biometrics.align import align_face
from entryexit.biometrics.models import SFACE_2021DEC, verified_model_path
from entryexit.config import Settings
from entryexit.errors import BiometricError
from entryexit.evaluation.datasets import LabelledImages

Network = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def aligned_crops(
    engine: FaceEngine, data: LabelledImages, persons: list[str], count: int
) -> list[NDArray[np.uint8]]:
    """Up to two photos a person, the largest face of each aligned as SFace takes it."""
    manifest = engine.recognizer
    crops: list[NDArray[np.uint8]] = []
    for person in persons:
        for path in data.persons[person][:2]:
            try:
                pixels = engine.decode(path.read_bytes()).pixels
            except BiometricError:
                continue
            found = engine.detect(pixels)
            if not found:
                continue
            subject = max(found, key=lambda d: d.width * d.height)
            crops.append(
                align_face(
                    pixels,
                    subject.landmarks,
                    destination=manifest.landmarks,
                    output_size=(manifest.input_width, manifest.input_height),
                )
            )
        if len(crops) >= count:
            break
    return crops[:count]


def blob(crops: list[NDArray[np.uint8]]) -> NDArray[np.float32]:
    """SFace's input: RGB, raw 0..255, N x 3 x 112 x 112."""
    batch = np.stack(crops).astype(np.float32)[..., ::-1]
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def foldable_float_model(source: Path, target: Path) -> None:
    model = onnx.load(str(source))
    weights = {initializer.name for initializer in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(version_converter.convert_version(model, 13), str(target))


def ort_network(path: Path) -> Network:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: np.asarray(session.run(None, {name: batch})[0], dtype=np.float32)


def opencv_network(path: Path) -> Network:
    net = cv2.dnn.readNetFromONNX(str(path))

    def run(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        net.setInput(batch)
        return np.asarray(net.forward(), dtype=np.float32)

    return run


def cpu_ms(network: Network, batch: NDArray[np.float32], runs: int = 40) -> float:
    for _ in range(3):
        network(batch)
    times = []
    for _ in range(runs):
        began = time.process_time()
        network(batch)
        times.append((time.process_time() - began) * 1000.0)
    return float(np.median(times))


def embeddings(network: Network, crops: list[NDArray[np.uint8]]) -> NDArray[np.float32]:
    rows = np.concatenate([network(blob([crop])) for crop in crops])
    normalised: NDArray[np.float32] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/lfw-dev"))
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--crops", type=int, default=300)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"skipped: no data at {args.data} (see ../shared/data/lfw-dev/README)")
    cv2.setNumThreads(1)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    settings = Settings()
    model = verified_model_path(settings.resolved_model_dir, SFACE_2021DEC)
    engine = FaceEngine.from_model_dir(settings.resolved_model_dir)
    data = LabelledImages.scan(args.data)
    persons = sorted(data.persons)
    random.Random(1).shuffle(persons)
    half = len(persons) // 2
    calibration = aligned_crops(engine, data, persons[:half], args.calibration)
    held_out = aligned_crops(engine, data, persons[half:], args.crops)
    print(f"{len(calibration)} calibration crops, {len(held_out)} held-out crops (other persons)")

    with tempfile.TemporaryDirectory() as scratch:
        folded = Path(scratch) / "sface-float.onnx"
        foldable_float_model(model, folded)
        dynamic = Path(scratch) / "sface-int8-dynamic.onnx"
        quantize_dynamic(str(folded), str(dynamic), weight_type=QuantType.QInt8)
        input_name = onnx.load(str(folded)).graph.input[0].name

        class Crops(CalibrationDataReader):  # type: ignore[misc]  # untyped library
            def __init__(self) -> None:
                self._feeds = iter([{input_name: blob([crop])} for crop in calibration])

            def get_next(self) -> dict[str, NDArray[np.float32]] | None:
                return next(self._feeds, None)

        static = Path(scratch) / "sface-int8-qdq.onnx"
        quantize_static(
            str(folded),
            str(static),
            Crops(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )
        reference = opencv_network(model)
        expected = embeddings(reference, held_out)
        nearest = np.argsort(-(expected @ expected.T), axis=1)[:, 1]
        two = blob(held_out[:2])
        print(
            f"OpenCV DNN, float (the engine's): {cpu_ms(reference, two):.1f} ms CPU for two crops"
        )
        candidates: list[tuple[str, Callable[[], Network]]] = [
            ("onnxruntime, float", lambda: ort_network(folded)),
            ("onnxruntime, int8 dynamic", lambda: ort_network(dynamic)),
            ("onnxruntime, int8 static QDQ", lambda: ort_network(static)),
            ("OpenCV DNN, int8 static QDQ", lambda: opencv_network(static)),
        ]
        for label, load in candidates:
            try:
                network = load()
                found = embeddings(network, held_out)
            except Exception as exc:  # a runtime that cannot run the graph is a result too
                print(f"{label}: does not run it ({str(exc).splitlines()[0][:160]})")
                continue
            cosine = (expected * found).sum(axis=1)
            agree = float(np.mean(np.argsort(-(found @ found.T), axis=1)[:, 1] == nearest))
            print(
                f"{label}: {cpu_ms(network, two):.1f} ms CPU for two crops; cosine to float"
                f" min {cosine.min():.4f}, 1st percentile {np.percentile(cosine, 1):.4f},"
                f" median {np.median(cosine):.4f}; nearest neighbour the same for"
                f" {agree:.1%} of {len(held_out)} crops"
            )


if __name__ == "__main__":
    main()
