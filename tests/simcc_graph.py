"""The nodes of a SimCC-shaped test graph, shared by the decoder and preset tests."""

from __future__ import annotations

from onnx import TensorProto, helper


def simcc_nodes(x_name: str, y_name: str) -> list:
    """``input [N, C, H, W]`` -> ``x_name [N, C, 2W]`` (per-column maxima) and ``y_name [N, C, 2H]`` (per-row
    maxima), each stretched to two bins per pixel: a bright spot's SimCC argmax / 2 is its position."""
    scale = helper.make_tensor("s", TensorProto.FLOAT, [3], [1.0, 1.0, 2.0])
    return [helper.make_node("ReduceMax", ["input"], ["cols"], axes=[2], keepdims=0),
            helper.make_node("ReduceMax", ["input"], ["rows"], axes=[3], keepdims=0),
            helper.make_node("Constant", [], ["scale3"], value=scale),
            helper.make_node("Resize", ["cols", "", "scale3"], [x_name], mode="nearest"),
            helper.make_node("Resize", ["rows", "", "scale3"], [y_name], mode="nearest")]
