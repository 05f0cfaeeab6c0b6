"""LEADER's ONNX graph with its exported activation and normalisation subgraphs fused.

The ONNX export (from Keras, through tf2onnx) spells each GELU (tanh form) as eight
element-wise nodes with layout transposes between them, and each per-pixel layer
normalisation (over channels) as a dozen; ONNX Runtime fuses neither, and together they were
about half of one extraction's CPU time (profiled with ``SessionOptions.enable_profiling``).
This rewrite replaces every GELU with one ``com.microsoft.FastGelu`` (the same tanh formula)
and every layer norm with ``Transpose -> LayerNormalization(axis=-1) -> Transpose`` (the
same mean, variance, epsilon, scale and offset). The weights are untouched; outputs agree with
the original graph to within float rounding (``tests/integration/test_fingerprint_engine.py``).

The rewrite runs in memory on the hash-verified file each time the network is loaded, so
there is no second model file to pin: what runs is the pinned file plus this code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np

_GELU = re.compile(r"(.*?/Gelu)/")
_LAYER_NORM = re.compile(r"(.*?_ln_1)/")


class GraphRewriteError(ValueError):
    """The graph is not the LEADER export this rewrite was written for."""


def fused_leader_model(serialized: bytes) -> bytes:
    """The rewritten model, serialised (for ``onnxruntime.InferenceSession``)."""
    import onnx
    from onnx import helper

    model = onnx.load_from_string(serialized)
    graph = model.graph
    nodes = list(graph.node)
    gelu = _fuse_gelus(nodes)
    norms, scales = _fuse_layer_norms(graph, nodes)
    if not gelu or not norms:
        raise GraphRewriteError("no GELU or layer norm subgraph found: not the LEADER export")
    replacements = {**gelu, **norms}
    rewritten: list[Any] = []
    for node in nodes:
        prefix = _block_of(node.name)
        if prefix is None:
            rewritten.append(node)
        elif node.name == replacements[prefix][0]:
            rewritten.extend(replacements[prefix][1])
    kept = _without_dead_nodes(rewritten, {o.name for o in graph.output})
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(scales)
    used = {name for node in kept for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return bytes(model.SerializeToString())


def _block_of(name: str) -> str | None:
    for pattern in (_GELU, _LAYER_NORM):
        match = pattern.match(name)
        if match is not None:
            return match.group(1)
    return None


def _blocks(nodes: Iterable[Any], pattern: re.Pattern[str]) -> dict[str, dict[str, Any]]:
    blocks: dict[str, dict[str, Any]] = {}
    for node in nodes:
        match = pattern.match(node.name)
        if match is not None:
            prefix = match.group(1)
            blocks.setdefault(prefix, {})[node.name[len(prefix) + 1 :]] = node
    return blocks


def _fuse_gelus(nodes: list[Any]) -> dict[str, tuple[str, list[Any]]]:
    """``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` -> FastGelu, per block."""
    from onnx import helper

    fused: dict[str, tuple[str, list[Any]]] = {}
    for prefix, block in _blocks(nodes, _GELU).items():
        try:
            first, last = block["mul"], block["mul_3"]
        except KeyError as exc:
            raise GraphRewriteError(f"{prefix}: not the expected GELU subgraph") from exc
        inputs = [name for name in first.input if "/Gelu/" not in name]
        if len(inputs) != 1 or "Tanh" not in {n.op_type for n in block.values()}:
            raise GraphRewriteError(f"{prefix}: not the expected GELU subgraph")
        node = helper.make_node(
            "FastGelu", inputs, [last.output[0]], name=f"{prefix}/fused", domain="com.microsoft"
        )
        fused[prefix] = (last.name, [node])
    return fused


def _fuse_layer_norms(
    graph: Any, nodes: list[Any]
) -> tuple[dict[str, tuple[str, list[Any]]], list[Any]]:
    """Per-pixel layer norm over channels (NCHW axis 1) -> LayerNormalization on NHWC."""
    from onnx import helper, numpy_helper

    initializers = {init.name: init for init in graph.initializer}
    producers = {out: node for node in nodes for out in node.output}

    def constant(name: str) -> np.ndarray[Any, Any]:
        if name in initializers:
            return np.asarray(numpy_helper.to_array(initializers[name]))
        node = producers.get(name)
        if node is not None and node.op_type in ("Reshape", "Identity", "Squeeze", "Unsqueeze"):
            return constant(node.input[0])
        raise GraphRewriteError(f"{name} is not a constant")

    fused: dict[str, tuple[str, list[Any]]] = {}
    scales: list[Any] = []
    for prefix, block in _blocks(nodes, _LAYER_NORM).items():
        try:
            mean, scale, offset, epsilon, last = (
                block["moments/mean"],
                block["mul"],
                block["add_1"],
                block["add"],
                block["add_2"],
            )
        except KeyError as exc:
            raise GraphRewriteError(f"{prefix}: not the expected layer norm subgraph") from exc
        attributes = {a.name: helper.get_attribute_value(a) for a in mean.attribute}
        if list(attributes.get("axes", [])) != [1]:
            raise GraphRewriteError(f"{prefix}: the layer norm is not over channels")
        gamma = constant(next(i for i in scale.input if "Rsqrt" not in i)).astype(np.float32)
        beta = constant(next(i for i in offset.input if "mul_1" not in i)).astype(np.float32)
        eps = float(constant(next(i for i in epsilon.input if "variance" not in i)).ravel()[0])
        gamma, beta = gamma.ravel(), beta.ravel()
        if gamma.shape != beta.shape:
            raise GraphRewriteError(f"{prefix}: scale and offset differ in shape")
        scale_name, offset_name = f"{prefix}/fused_scale", f"{prefix}/fused_offset"
        scales += [
            numpy_helper.from_array(gamma, scale_name),
            numpy_helper.from_array(beta, offset_name),
        ]
        nhwc, normalised = f"{prefix}/fused_nhwc", f"{prefix}/fused_normalised"
        fused[prefix] = (
            last.name,
            [
                helper.make_node(
                    "Transpose",
                    [mean.input[0]],
                    [nhwc],
                    perm=[0, 2, 3, 1],
                    name=f"{prefix}/fused_in",
                ),
                helper.make_node(
                    "LayerNormalization",
                    [nhwc, scale_name, offset_name],
                    [normalised],
                    axis=-1,
                    epsilon=eps,
                    name=f"{prefix}/fused",
                ),
                helper.make_node(
                    "Transpose",
                    [normalised],
                    [last.output[0]],
                    perm=[0, 3, 1, 2],
                    name=f"{prefix}/fused_out",
                ),
            ],
        )
    return fused, scales


def _without_dead_nodes(nodes: list[Any], outputs: set[str]) -> list[Any]:
    while True:
        used = set(outputs)
        for node in nodes:
            used.update(node.input)
        kept = [node for node in nodes if any(out in used for out in node.output)]
        if len(kept) == len(nodes):
            return kept
        nodes = kept
