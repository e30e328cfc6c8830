"""Third-party keypoint outputs decoded by the runtime: raw heatmaps (ViTPose-style) and SimCC (RTMPose), on
hand-made graphs whose outputs peak where the crop is brightest; the decoded point lands on the bright
square in frame pixels. Outputs are read from the graph, SimCC's x and y told apart by their lengths."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="building the test graphs needs the export extra")
from onnx import TensorProto, helper  # noqa: E402

from edgereid.card import write_card  # noqa: E402
from edgereid.card_tools import card_for_onnx  # noqa: E402
from edgereid.ops.keypoint_decode import decode_heatmaps, decode_heatmaps_udp, decode_simcc  # noqa: E402
from edgereid.pipeline import Pipeline  # noqa: E402
from tests.simcc_graph import simcc_nodes  # noqa: E402

H, W = 64, 48
BOX = [20, 10, 116, 138]  # 96 x 128 frame pixels: 2 frame pixels per input pixel
SPOT = (84, 58)  # (x, y) frame centre of the bright square


def _frame() -> np.ndarray:
    frame = np.zeros((160, 200, 3), np.uint8)
    x, y = SPOT
    frame[y - 3:y + 3, x - 3:x + 3] = 255
    return frame


def _attach(tmp_path, name, nodes, outputs, decode) -> str:
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, H, W])],
                              outputs)
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    card = card_for_onnx(path, task="keypoints", height=H, width=W, mean=(0, 0, 0), std=(255, 255, 255),
                         keypoint_decode=decode)
    return str(write_card(path, card, path))


def _keypoints(model: str) -> np.ndarray:
    with Pipeline({"keypoint_model": model}) as pipeline:
        return pipeline.process([_frame()], [[BOX]], "cam")[0].persons.keypoints[0]


def test_raw_heatmaps_at_a_quarter_of_the_input(tmp_path):
    """heatmaps = 4x4 average pooling of the crop: [N, 3, 16, 12], one map per channel (K = 3)."""
    nodes = [helper.make_node("AveragePool", ["input"], ["heat"], kernel_shape=[4, 4], strides=[4, 4])]
    model = _attach(tmp_path, "heat", nodes, [helper.make_tensor_value_info("heat", TensorProto.FLOAT, ["N", 3, 16, 12])],
                    "heatmap")
    points = _keypoints(model)
    assert np.abs(points - SPOT).max() <= 8  # within one heatmap cell (4 input = 8 frame pixels)


def test_simcc_x_and_y_from_their_lengths(tmp_path):
    """simcc_x = per-column maxima resized to 2x width; simcc_y = per-row maxima at 2x height."""
    nodes = simcc_nodes("sx", "sy")
    outputs = [helper.make_tensor_value_info("sy", TensorProto.FLOAT, ["N", 3, 2 * H]),
               helper.make_tensor_value_info("sx", TensorProto.FLOAT, ["N", 3, 2 * W])]
    model = _attach(tmp_path, "simcc", nodes, outputs, "simcc")
    from edgereid.card import read_card

    card = read_card(model)
    assert (card.output("simcc_x").name, card.output("simcc_y").name) == ("sx", "sy")
    assert np.abs(_keypoints(model) - SPOT).max() <= 4


def test_the_decoders_on_known_arrays():
    heat = np.zeros((1, 1, 8, 8))
    heat[0, 0, 3, 5], heat[0, 0, 3, 6], heat[0, 0, 4, 5] = 1.0, 0.5, 0.2
    coords, confidence = decode_heatmaps(heat, (32, 32))
    np.testing.assert_allclose(coords[0, 0], [(5 + 0.25) * 4, (3 + 0.25) * 4])
    assert confidence[0, 0] == 1.0
    x, y = np.zeros((1, 1, 20)), np.zeros((1, 1, 10))
    x[0, 0, 7], y[0, 0, 3] = 0.9, 0.6
    coords, confidence = decode_simcc(x, y, 2.0)
    np.testing.assert_allclose(coords[0, 0], [3.5, 1.5])
    assert confidence[0, 0] == pytest.approx(0.6)


def test_udp_heatmaps_land_a_sub_pixel_peak_with_mmposes_scale():
    """A ViTPose-sized map (64x48 for a 256x192 input) with a Gaussian (sigma 2) peaked between pixels: DARK
    recovers the peak to a tenth of a heatmap pixel, then x * 192 / 47 and y * 256 / 63 (UDP's scale)."""
    peak = (20.3, 30.7)
    ys, xs = np.mgrid[0:64, 0:48]
    heat = np.exp(-((xs - peak[0]) ** 2 + (ys - peak[1]) ** 2) / (2 * 2.0 ** 2))[None, None]
    coords, confidence = decode_heatmaps_udp(heat, (256, 192))
    expected = np.array([peak[0] * 192 / 47, peak[1] * 256 / 63])
    assert np.abs(coords[0, 0] - expected).max() < 0.1 * 256 / 63
    assert np.abs(decode_heatmaps(heat, (256, 192))[0][0, 0] - expected).max() > 1.0  # the other convention
    assert confidence[0, 0] == pytest.approx(heat.max())
