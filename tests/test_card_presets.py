"""Card presets for well-known model families: each preset's card normalises a crop exactly as the family's
own inference code does, written here with OpenCV's ``blobFromImage`` or NumPy from the constants that code
uses (independently of the preset table); explicit flags override a preset; a SimCC preset finds its outputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="building the test graphs needs the export extra")
from onnx import TensorProto, helper  # noqa: E402

from edgereid.card import read_card  # noqa: E402
from edgereid.cli import main  # noqa: E402
from edgereid.ops.preprocess import normalise_into  # noqa: E402
from edgereid.pipeline import Pipeline  # noqa: E402
from tests.simcc_graph import simcc_nodes  # noqa: E402

IMAGENET_MEAN_01 = np.array([0.485, 0.456, 0.406])
IMAGENET_STD_01 = np.array([0.229, 0.224, 0.225])


def _imagenet_rgb(bgr: np.ndarray) -> np.ndarray:
    """torchvision ToTensor + Normalize on the RGB image (torchreid, deep-sort-realtime)."""
    return ((bgr[..., ::-1] / 255.0 - IMAGENET_MEAN_01) / IMAGENET_STD_01).transpose(2, 0, 1)


REFERENCES = {
    # insightface arcface_onnx.py: blobFromImage(img, 1.0 / input_std, size, (input_mean,) * 3, swapRB=True)
    "insightface-arcface": lambda bgr: cv2.dnn.blobFromImage(bgr, 1.0 / 127.5, (112, 112), (127.5,) * 3,
                                                             swapRB=True)[0],
    # OpenCV FaceRecognizerSF::feature: blobFromImage(aligned, 1, Size(112, 112), Scalar(0, 0, 0), true, false)
    "opencv-sface": lambda bgr: cv2.dnn.blobFromImage(bgr, 1.0, (112, 112), (0, 0, 0), swapRB=True, crop=False)[0],
    "torchreid-osnet": _imagenet_rgb,
    "deepsort-mobilenet": _imagenet_rgb,
    # fast-reid onnx_inference.py: image[:, :, ::-1], astype float32, transpose(2, 0, 1)
    "fastreid": lambda bgr: bgr[..., ::-1].astype(np.float32).transpose(2, 0, 1),
}
SIZES = {"insightface-arcface": (112, 112), "opencv-sface": (112, 112), "torchreid-osnet": (256, 128),
         "deepsort-mobilenet": (224, 224), "fastreid": (256, 128)}


def _identity_graph(tmp_path, height: int, width: int) -> str:
    nodes = [helper.make_node("Flatten", ["input"], ["embedding"], axis=1)]
    graph = helper.make_graph(nodes, "identity",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, height, width])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 3 * height * width])])
    path = tmp_path / f"identity_{height}x{width}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return str(path)


@pytest.mark.parametrize("preset", sorted(REFERENCES))
def test_a_preset_normalises_as_its_family_does(tmp_path, preset):
    height, width = SIZES[preset]
    model = _identity_graph(tmp_path, height, width)
    assert main(["card", "attach", "--model", model, "--preset", preset, "--output",
                 f"embedding:embedding:{3 * height * width}"]) == 0
    spec = read_card(model).input
    assert (spec.height, spec.width) == (height, width)
    bgr = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
    ours = np.empty((3, height, width), np.float32)
    normalise_into(ours, bgr, spec)
    np.testing.assert_allclose(ours, REFERENCES[preset](bgr), rtol=1e-5, atol=1e-4)


def test_explicit_flags_override_the_preset(tmp_path, capsys):
    model = _identity_graph(tmp_path, 384, 128)
    assert main(["card", "attach", "--model", model, "--preset", "torchreid-osnet", "--height", "384",
                 "--output", f"embedding:embedding:{3 * 384 * 128}"]) == 0
    assert "preset torchreid-osnet" in capsys.readouterr().out
    spec = read_card(model).input
    assert (spec.height, spec.width, spec.mean) == (384, 128, (123.675, 116.28, 103.53))


def test_attach_without_a_size_or_with_an_unknown_preset_is_refused(tmp_path, capsys):
    model = _identity_graph(tmp_path, 112, 112)
    assert main(["card", "attach", "--model", model, "--task", "face"]) == 2
    assert "needs --height, --width" in capsys.readouterr().err
    assert main(["card", "attach", "--model", model, "--preset", "arcface"]) == 2
    err = capsys.readouterr().err
    assert "unknown card preset 'arcface'" in err and "insightface-arcface" in err


def test_the_rtmpose_preset_reads_its_simcc_outputs_and_finds_the_point(tmp_path):
    """An RTMPose-shaped graph: 256x192 in, SimCC x of 384 and y of 512 bins (per-column / per-row maxima)."""
    nodes = simcc_nodes("simcc_x", "simcc_y")
    graph = helper.make_graph(nodes, "rtmpose_like",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 256, 192])],
                              [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, ["N", 3, 384]),
                               helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, ["N", 3, 512])])
    path = tmp_path / "rtmpose_like.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    assert main(["card", "attach", "--model", str(path), "--preset", "rtmpose-simcc"]) == 0
    card = read_card(path)
    assert (card.keypoint_decode, card.simcc_split_ratio, card.input.resize) == ("simcc", 2.0, "letterbox")
    assert np.abs(_bright_spot_points(str(path)) - (100, 120)).max() <= 3


def _bright_spot_points(model: str) -> np.ndarray:
    frame = np.zeros((300, 300, 3), np.uint8)
    frame[117:123, 97:103] = 255  # a bright square centred on (100, 120)
    with Pipeline({"keypoint_model": model}) as pipeline:
        return pipeline.process([frame], [[[40, 20, 180, 260]]], "cam")[0].persons.keypoints[0]


def test_the_vitpose_preset_decodes_udp_heatmaps(tmp_path):
    """A ViTPose-shaped graph: 256x192 in, 64x48 heatmaps (4x4 average pooling, one map per channel)."""
    nodes = [helper.make_node("AveragePool", ["input"], ["heat"], kernel_shape=[4, 4], strides=[4, 4])]
    graph = helper.make_graph(nodes, "vitpose_like",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 256, 192])],
                              [helper.make_tensor_value_info("heat", TensorProto.FLOAT, ["N", 3, 64, 48])])
    path = tmp_path / "vitpose_like.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    assert main(["card", "attach", "--model", str(path), "--preset", "vitpose-heatmap"]) == 0
    assert read_card(path).keypoint_decode == "heatmap_udp"
    assert np.abs(_bright_spot_points(str(path)) - (100, 120)).max() <= 4


def test_card_presets_lists_each_with_its_source(tmp_path, capsys):
    out = tmp_path / "presets.json"
    assert main(["card", "presets", "--json", str(out)]) == 0
    listed = json.loads(out.read_text())
    assert set(REFERENCES) | {"rtmpose-simcc", "vitpose-heatmap", "mmpose-heatmap"} == set(listed)
    printed = capsys.readouterr().out
    assert all(f"source: {entry['source']}" in printed for entry in listed.values())
