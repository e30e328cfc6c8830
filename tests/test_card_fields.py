"""Cards for other people's models: NHWC and uint8 inputs, one channel, scalar or no normalisation, a fixed
batch; each on a small hand-made ONNX graph whose output is the input it was fed, so the runtime's
preprocessing is checked value by value."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="building the test graphs needs the export extra")
from onnx import TensorProto, helper  # noqa: E402

from edgereid.card import write_card  # noqa: E402
from edgereid.card_tools import card_for_onnx, parse_output_spec  # noqa: E402
from edgereid.errors import ExportError, ModelCardError  # noqa: E402
from edgereid.pipeline import Pipeline  # noqa: E402

H, W = 32, 16
BOX = [40, 30, 120, 190]


def _graph(tmp_path, name: str, shape: list, elem: int, dim: int, **card) -> str:
    """input -> (Cast to float) -> Flatten -> 'embedding': the model returns exactly what it was fed."""
    nodes = [helper.make_node("Cast", ["input"], ["as_float"], to=TensorProto.FLOAT),
             helper.make_node("Flatten", ["as_float"], ["embedding"], axis=1)]
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("input", elem, shape)],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [shape[0], dim])])
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    built = card_for_onnx(path, task="reid", height=H, width=W, outputs=[parse_output_spec(f"embedding:embedding:{dim}")],
                          **card)
    return str(write_card(path, built, path))


def _crop(frame: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = BOX
    return cv2.resize(frame[y1:y2, x1:x2], (W, H), interpolation=cv2.INTER_LINEAR).astype(np.float64)


def _run(model: str, frame: np.ndarray, boxes=(BOX,)) -> np.ndarray:
    with Pipeline({"reid_model": model}) as pipeline:
        return pipeline.process([frame], [list(boxes)], "cam")[0].persons.embeddings


def _unit(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1).astype(np.float64)
    return flat / np.linalg.norm(flat)


def test_nhwc_uint8_without_normalisation(tmp_path, frames):
    model = _graph(tmp_path, "nhwc_u8", ["N", H, W, 3], TensorProto.UINT8, H * W * 3, layout="NHWC", dtype="uint8",
                   normalize="none", color_order="BGR")
    expected = _unit(np.rint(_crop(frames[0])))  # the graph sees the raw BGR crop, pixel-major
    np.testing.assert_allclose(_run(model, frames[0])[0], expected, atol=1e-6)


def test_one_channel_with_scalar_normalisation(tmp_path, frames):
    model = _graph(tmp_path, "grey", ["N", 1, H, W], TensorProto.FLOAT, H * W, channels=1, normalize="scalar",
                   mean=[127.5], std=[64.0])
    crop = _crop(frames[0])
    grey = 0.114 * crop[..., 0] + 0.587 * crop[..., 1] + 0.299 * crop[..., 2]
    np.testing.assert_allclose(_run(model, frames[0])[0], _unit((grey - 127.5) / 64.0), atol=1e-5)


def test_a_fixed_batch_of_4_runs_padded_and_sets_the_engine_profile(tmp_path, frames):
    model = _graph(tmp_path, "fixed4", [4, 3, H, W], TensorProto.FLOAT, H * W * 3)
    six = [BOX] * 5 + [[0, 0, 160, 120]]
    embeddings = _run(model, frames[0], six)
    assert embeddings.shape == (6, H * W * 3)
    np.testing.assert_allclose(embeddings[0], embeddings[4], atol=1e-6)  # the same box in both padded batches
    from pathlib import Path

    from edgereid.engine_file import BatchProfile
    from edgereid.exporting.engine import engine_profile

    assert engine_profile(Path(model), None) == BatchProfile(4, 4, 4)
    with pytest.raises(ExportError, match="fixed batch of 4"):
        engine_profile(Path(model), BatchProfile(1, 8, 32))


def test_a_card_whose_layout_disagrees_with_the_graph_is_refused(tmp_path):
    with pytest.raises(ModelCardError, match="input shape"):
        _graph(tmp_path, "lying", ["N", H, W, 3], TensorProto.UINT8, H * W * 3, dtype="uint8", normalize="none")
    with pytest.raises(ModelCardError, match="uint8 input takes raw pixels"):
        _graph(tmp_path, "u8norm", ["N", H, W, 3], TensorProto.UINT8, H * W * 3, layout="NHWC", dtype="uint8")


def test_card_attach_takes_the_new_fields(tmp_path):
    from edgereid.card import read_card
    from edgereid.cli import main

    nodes = [helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Flatten", ["f"], ["emb"], axis=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.UINT8, ["N", H, W, 1])],
                              [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", H * W])])
    path = tmp_path / "grey_u8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    assert main(["card", "attach", "--model", str(path), "--task", "reid", "--height", str(H), "--width", str(W),
                 "--layout", "nhwc", "--dtype", "uint8", "--channels", "1", "--normalize", "none"]) == 0
    spec = read_card(path).input
    assert (spec.layout, spec.dtype, spec.channels, spec.normalize) == ("NHWC", "uint8", 1, "none")
