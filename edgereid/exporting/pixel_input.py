"""Graphs that take raw uint8 pixels and normalise themselves (``edgereid convert --uint8-input``).

The card's ``(pixel - mean) / std`` moves from the host into the graph's first three ops (Cast to float, Sub the
mean, Mul by 1 / std), and the card then says ``dtype: uint8``, ``normalize: none``. Two things get faster:

- preprocessing writes uint8 planes instead of float ones (a quarter of the bytes, no arithmetic per pixel);
- OpenVINO fuses Cast, Sub, Mul and the first layer's INT8 quantizer into one integer step, so an INT8 graph runs
  from integers end to end. Measured on the CI machine (256x128 ReID student, batch 32, one interleaved run,
  ``scripts/openvino_probe.py``): the ``--target cpu`` INT8 graph on OpenVINO with BF16 for its float remainder went
  from 2.21x ONNX Runtime FP32 with float input to 2.82x with uint8 input, provided the three ops are left out of
  the quantization (Q/DQ around them: 2.47x).

The fold is exact where the host never fills pixels the graph must see as the mean: letterbox bars and the borders
of face warps are filled with the mean colour so that they normalise to zero, and a raw-pixel card has no mean to
fill with, so letterbox cards and face cards are refused.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgereid.card import ModelCard, set_card_metadata
from edgereid.errors import ExportError

# Nodes the fold inserts carry this prefix; the INT8 quantizer leaves them in float (see the module text).
PIXEL_NODE_PREFIX = "edgereid_pixels_"


def rewire_input(model, input_name: str, new_name: str) -> None:
    """Make every node of ``model.graph`` that reads ``input_name`` read ``new_name`` instead."""
    for node in model.graph.node:
        for slot, name in enumerate(node.input):
            if name == input_name:
                node.input[slot] = new_name


def check_foldable(card: ModelCard) -> None:
    """Raise :class:`ExportError` unless ``card``'s normalisation can move into the graph exactly."""
    spec = card.input
    problems = []
    if spec.dtype != "float32" or spec.normalize == "none":
        problems.append(f"input is {spec.dtype} with normalize {spec.normalize} (already raw pixels?)")
    if spec.resize == "letterbox":
        problems.append("letterbox resize (bars must normalise to zero; raw pixels have no mean to fill them with)")
    if card.task == "face":
        problems.append("face alignment (warp borders must normalise to zero, as letterbox bars)")
    if problems:
        raise ExportError(f"model '{card.name}' cannot take uint8 pixels", expected="a float32 input with per-channel "
                          "or scalar normalisation and stretch resize", got="; ".join(problems),
                          fix="convert without --uint8-input")


def fold_normalisation(model, card: ModelCard):
    """A copy of the ``onnx.ModelProto`` ``model`` whose input (same name and layout) is uint8 pixels, with the
    card's normalisation as its first ops, and the card that says so."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    check_foldable(card)
    spec = card.input
    folded = onnx.ModelProto.FromString(model.SerializeToString())
    graph = folded.graph
    mean, std = spec.channel_stats()
    shape = (1, spec.channels, 1, 1) if spec.layout == "NCHW" else (1, 1, 1, spec.channels)
    names = {step: f"{PIXEL_NODE_PREFIX}{step}" for step in ("cast", "sub", "mul")}
    graph.initializer.extend([
        numpy_helper.from_array(np.array(mean, np.float32).reshape(shape), f"{names['sub']}_mean"),
        numpy_helper.from_array((1.0 / np.array(std, np.float32)).reshape(shape), f"{names['mul']}_inverse_std")])
    normalised = f"{spec.name}__normalised"
    rewire_input(folded, spec.name, normalised)
    steps = [helper.make_node("Cast", [spec.name], [names["cast"]], name=names["cast"], to=TensorProto.FLOAT),
             helper.make_node("Sub", [names["cast"], f"{names['sub']}_mean"], [names["sub"]], name=names["sub"]),
             helper.make_node("Mul", [names["sub"], f"{names['mul']}_inverse_std"], [normalised], name=names["mul"])]
    for node in reversed(steps):
        graph.node.insert(0, node)
    graph.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    new_card = card.replace(input=dataclasses.replace(spec, dtype="uint8", normalize="none"))
    set_card_metadata(folded, new_card)
    onnx.checker.check_model(folded)
    return folded, new_card


def to_pixels(crops: np.ndarray, card: ModelCard) -> np.ndarray:
    """Normalised float crops (laid out as ``card``'s input) back to the uint8 pixels they were made from."""
    mean, std = card.input.channel_stats()
    shape = (1, -1, 1, 1) if card.input.layout == "NCHW" else (1, 1, 1, -1)
    pixels = crops * np.array(std, np.float32).reshape(shape) + np.array(mean, np.float32).reshape(shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
