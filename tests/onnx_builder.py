"""A tiny ONNX face "embedding" model made with the onnx helper API, for the plug-in tests.

It flattens a 3 x 32 x 32 crop and multiplies by a fixed random matrix: not a recognizer,
but a real ONNX graph that both OpenCV and onnxruntime run, with a known output dimension.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from entryexit.biometrics.align import REFERENCE_LANDMARKS_112

TINY_SIDE = 32
TINY_DIMENSION = 8


def write_tiny_model(path: Path, dimension: int = TINY_DIMENSION, seed: int = 7) -> Path:
    weights = np.random.default_rng(seed).normal(size=(3 * TINY_SIDE * TINY_SIDE, dimension))
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["crop"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weights"], ["embedding"]),
        ],
        "tiny-embedder",
        [helper.make_tensor_value_info("crop", TensorProto.FLOAT, [None, 3, TINY_SIDE, TINY_SIDE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, dimension])],
        [numpy_helper.from_array(weights.astype(np.float32), "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def tiny_manifest(
    key: str = "tiny-test", dimension: int = TINY_DIMENSION, runtime: str = "onnxruntime"
) -> str:
    points = (REFERENCE_LANDMARKS_112 * TINY_SIDE / 112).round(3).tolist()
    return f"""
key = "{key}"
name = "Tiny test embedder"
version = "1"
licence = "test only"
runtime = "{runtime}"

[input]
width = {TINY_SIDE}
height = {TINY_SIDE}
colour = "BGR"
mean = [127.5, 127.5, 127.5]
std = [127.5, 127.5, 127.5]

[alignment]
landmarks = {points}

[output]
dimension = {dimension}
similarity = "cosine"

[calibration.flip]
gallery_size = 300
source = "made up for the tests"

[calibration.flip.gallery_fpir]
"0.001" = 0.9

[calibration.flip.verification_far]
"0.001" = 0.8
"""
