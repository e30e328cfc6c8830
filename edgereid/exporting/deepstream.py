"""DeepStream configs written from a model card: an nvinfer secondary-GIE config, an nvdspreprocess config and
the nvtracker ``ReID:`` section, for DeepStream 8.0 (keys and value types as its gst-nvinfer, gst-nvdspreprocess
and NvMultiObjectTracker documentation give them; the parsers have not changed in substance since 6.x).

nvinfer normalises with one scale for every channel, ``y = net-scale-factor * (x - offsets[c])``. A card with a
per-channel std cannot be said that way, so the std is folded into the graph instead: the written ONNX starts
with a ``Mul`` by ``1 / std[c]`` per channel, its card says std 1, and every config uses ``net-scale-factor=1``
with the card's mean as ``offsets`` (exact: the folded graph on ``x - mean`` equals the original on
``(x - mean) / std``). Limits stated in the written files: nvinfer crops boxes (no 5-point face alignment:
that needs an nvdspreprocess custom library), and it cannot feed uint8 graph inputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.card import ModelCard, card_from_metadata, set_card_metadata
from edgereid.errors import ExportError
from edgereid.fileio import atomic_write_bytes, atomic_write_text
from edgereid.exporting.pixel_input import rewire_input

DEEPSTREAM_VERSION = "8.0"
# precision names -> nvinfer network-mode and tracker networkMode (the two number them differently)
NVINFER_MODES = {"fp32": 0, "int8": 1, "fp16": 2}
TRACKER_MODES = {"fp32": 0, "fp16": 1, "int8": 2}
PREPROCESS_LIB = "/opt/nvidia/deepstream/deepstream/lib/gst-plugins/libcustom2d_preprocess.so"


@dataclass(frozen=True)
class DeepStreamFiles:
    """What :func:`write_deepstream_configs` wrote."""

    onnx: Path
    nvinfer: Path
    preprocess: Path
    tracker_reid: Path | None
    folded: bool


def fold_std(model, card: ModelCard):
    """A copy of the ``onnx.ModelProto`` whose input is ``x - mean`` (its first op divides by the card's per-channel
    std) and the card that says so (std 1)."""
    import onnx
    from onnx import helper, numpy_helper

    spec = card.input
    folded = onnx.ModelProto.FromString(model.SerializeToString())
    graph = folded.graph
    scaled = f"{spec.name}__std_folded"
    shape = (1, spec.channels, 1, 1) if spec.layout == "NCHW" else (1, 1, 1, spec.channels)
    inverse = numpy_helper.from_array((1.0 / np.array(spec.channel_stats()[1], np.float32)).reshape(shape),
                                      f"{spec.name}__inverse_std")
    rewire_input(folded, spec.name, scaled)
    graph.initializer.append(inverse)
    graph.node.insert(0, helper.make_node("Mul", [spec.name, inverse.name], [scaled], name="edgereid_fold_std"))
    new_card = card.replace(input=dataclasses.replace(spec, std=(1.0,) * len(spec.std)))
    set_card_metadata(folded, new_card)
    onnx.checker.check_model(folded)
    return folded, new_card


def _colour(card: ModelCard) -> int:
    return 2 if card.input.channels == 1 else (0 if card.input.color_order == "RGB" else 1)


def _ini(groups: dict[str, dict[str, object]], header: list[str]) -> str:
    lines = [f"# {line}" for line in header]
    for group, keys in groups.items():
        lines += ["", f"[{group}]"] + [f"{key}={_value(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ";".join(_value(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(round(value, 8))
    return str(value)


def write_deepstream_configs(onnx_path: str | Path, out: str | Path, *, batch: int = 16, precision: str = "fp16",
                             gie_id: int = 2, operate_on_gie_id: int = 1, class_ids: tuple[int, ...] = (0,),
                             gpu_id: int = 0) -> DeepStreamFiles:
    """Write the DeepStream configs (and the ONNX they name) for the model at ``onnx_path`` into ``out``."""
    import onnx

    if precision not in NVINFER_MODES:
        raise ExportError("unknown precision", expected=" | ".join(NVINFER_MODES), got=repr(precision)[:40])
    model = onnx.load(str(onnx_path))
    card = card_from_metadata({p.key: p.value for p in model.metadata_props}, str(onnx_path))
    spec = card.input
    if spec.dtype != "float32":
        raise ExportError(f"nvinfer feeds float32 planar input, and {onnx_path} takes {spec.dtype}",
                          fix="export the model with a float32 input for DeepStream")
    mean, std = spec.channel_stats()
    folded = len(set(std)) > 1
    if folded:
        model, card = fold_std(model, card)
        mean, std = card.input.channel_stats()
    out = Path(out)
    name = card.name
    onnx_file = atomic_write_bytes(out / f"{name}{'_std_folded' if folded else ''}.onnx", model.SerializeToString())
    engine = f"{onnx_file.name}_b{batch}_gpu{gpu_id}_{precision}.engine"
    scale = 1.0 / std[0]
    letterbox = spec.resize == "letterbox"
    header = [f"edgereid: DeepStream {DEEPSTREAM_VERSION} config for '{name}' ({card.task}), written from its card.",
              f"Input {spec.channels}x{spec.height}x{spec.width} {spec.layout}, y = net-scale-factor * (x - offsets[c]).",
              *(["Per-channel std folded into the graph: " + onnx_file.name] if folded else []),
              *(["nvinfer crops face boxes without 5-point alignment; the card's face template needs an "
                 "nvdspreprocess custom library."] if card.task == "face" else [])]
    nvinfer = {"property": {
        "gpu-id": gpu_id, "net-scale-factor": scale, "offsets": list(mean), "model-color-format": _colour(card),
        "onnx-file": onnx_file.name, "model-engine-file": engine, "infer-dims": [spec.channels, spec.height, spec.width],
        "network-input-order": 0 if spec.layout == "NCHW" else 1, "batch-size": batch,
        "network-mode": NVINFER_MODES[precision], "network-type": 100, "output-tensor-meta": True, "process-mode": 2,
        "gie-unique-id": gie_id, "operate-on-gie-id": operate_on_gie_id, "operate-on-class-ids": list(class_ids),
        "maintain-aspect-ratio": letterbox, "symmetric-padding": letterbox, "scaling-filter": 1,
        "input-tensor-from-meta": False, "classifier-threshold": 0.0}}
    nvinfer_path = atomic_write_text(out / f"config_infer_secondary_{name}.txt", _ini(
        nvinfer, header + [f"With config_preprocess_{name}.txt upstream, set input-tensor-from-meta=1 here."]))
    preprocess = {
        "property": {"enable": True, "target-unique-ids": [gie_id], "operate-on-gie-id": operate_on_gie_id,
                     "process-on-frame": False, "network-input-order": 0 if spec.layout == "NCHW" else 1,
                     "network-input-shape": [batch, spec.channels, spec.height, spec.width] if spec.layout == "NCHW"
                     else [batch, spec.height, spec.width, spec.channels],
                     "processing-width": spec.width, "processing-height": spec.height,
                     "network-color-format": _colour(card), "tensor-data-type": 0, "tensor-name": spec.name,
                     "scaling-buf-pool-size": 6, "tensor-buf-pool-size": 6, "scaling-pool-memory-type": 0,
                     "scaling-pool-compute-hw": 0, "scaling-filter": 1, "maintain-aspect-ratio": letterbox,
                     "symmetric-padding": letterbox, "custom-lib-path": PREPROCESS_LIB,
                     "custom-tensor-preparation-function": "CustomTensorPreparation"},
        "user-configs": {"pixel-normalization-factor": scale, "offsets": list(mean)},
        "group-0": {"src-ids": [-1], "custom-input-transformation-function": "CustomAsyncTransformation",
                    "process-on-all-objects": True, "operate-on-class-ids": list(class_ids)}}
    preprocess_path = atomic_write_text(out / f"config_preprocess_{name}.txt", _ini(preprocess, header))
    tracker = None
    if card.task == "reid":
        if spec.channels != 3:
            raise ExportError("the tracker's ReID takes RGB or BGR crops", got=f"{spec.channels} channel(s)")
        reid = ["  reidType: 2", f"  batchSize: {batch}", "  workspaceSize: 1000",
                f"  reidFeatureSize: {card.embedding_dim}", "  reidHistorySize: 100",
                f"  inferDims: [{spec.channels}, {spec.height}, {spec.width}]" if spec.layout == "NCHW"
                else f"  inferDims: [{spec.height}, {spec.width}, {spec.channels}]",
                f"  networkMode: {TRACKER_MODES[precision]}", f"  inputOrder: {0 if spec.layout == 'NCHW' else 1}",
                f"  colorFormat: {_colour(card)}", f"  offsets: [{', '.join(repr(float(m)) for m in mean)}]",
                f"  netScaleFactor: {_value(scale)}", f"  keepAspc: {int(letterbox)}", "  addFeatureNormalization: 1",
                f"  onnxFile: \"{onnx_file.name}\"", f"  modelEngineFile: \"{engine}\""]
        text = "\n".join([f"# {line}" for line in header] + ["# Merge into an NvDCF / NvDeepSORT tracker config "
                          "(TrajectoryManagement.enableReAssoc: 1 for reidType 2).", "ReID:"] + reid) + "\n"
        tracker = atomic_write_text(out / f"config_tracker_reid_{name}.yml", text)
    return DeepStreamFiles(onnx_file, nvinfer_path, preprocess_path, tracker, folded)
