"""The LEADER graph rewrite refuses graphs it was not written for, and the crop box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from entryexit.biometrics.fingerprints import _segment
from entryexit.biometrics.fingerprints._leader import LeaderNetwork
from entryexit.biometrics.fingerprints._leader_graph import GraphRewriteError, fused_leader_model
from entryexit.errors import ModelUnavailableError


def _relu_model() -> bytes:
    node = helper.make_node("Relu", ["input"], ["output"], name="functional_1/relu")
    graph = helper.make_graph(
        [node],
        "not-leader",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 4, 1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 4, 1])],
    )
    return bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )


def test_a_graph_without_leaders_subgraphs_is_refused() -> None:
    with pytest.raises(GraphRewriteError):
        fused_leader_model(_relu_model())


def test_the_fast_network_refuses_a_foreign_model_as_unavailable(tmp_path: Path) -> None:
    model = tmp_path / "other.onnx"
    model.write_bytes(_relu_model())
    LeaderNetwork(model, fast=False)  # a valid ONNX file loads as exported
    with pytest.raises(ModelUnavailableError, match="GELU"):
        LeaderNetwork(model, fast=True)


def test_a_half_built_gelu_is_refused() -> None:
    model = onnx.load_from_string(_relu_model())
    model.graph.node[0].name = "functional_1/act_1/Gelu/mul"
    with pytest.raises(GraphRewriteError, match="GELU"):
        fused_leader_model(model.SerializeToString())


def _ridges(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A blank sensor with sinusoidal ridges (period 9 px) inside ``box``."""
    pixels = np.full((height, width), 200, dtype=np.uint8)
    top, bottom, left, right = box
    x = np.arange(left, right)[None, :] + 0.3 * np.arange(top, bottom)[:, None]
    pixels[top:bottom, left:right] = (128 + 90 * np.sin(2 * np.pi * x / 9.0)).astype(np.uint8)
    return pixels


def test_the_crop_box_holds_the_ridge_area_and_its_margin() -> None:
    pixels = _ridges(300, 280, (80, 220, 100, 200))
    box = _segment.ridge_box(pixels, 32)
    assert box is not None
    top, bottom, left, right = box
    # The ridge area (within the window's blur) plus the margin, not the whole image.
    assert 80 - 32 - 10 <= top <= 80 - 32 + 10
    assert 220 + 32 - 10 <= bottom <= 220 + 32 + 10
    assert 100 - 32 - 10 <= left <= 100 - 32 + 10
    assert 200 + 32 - 10 <= right <= 200 + 32 + 10


def test_the_crop_box_stays_inside_the_image_and_is_none_on_a_blank_one() -> None:
    pixels = _ridges(200, 200, (0, 200, 0, 200))
    assert _segment.ridge_box(pixels, 32) == (0, 200, 0, 200)
    assert _segment.ridge_box(np.full((100, 100), 128, dtype=np.uint8), 32) is None
