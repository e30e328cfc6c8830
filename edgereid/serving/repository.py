"""A standalone Triton model repository from edgereid models, for a GPU Triton server (``edgereid triton-repo``).

For each model (``M.onnx`` with its card, or ``M.engine`` with its sidecar) three entries:

- ``<name>``: the model itself, ``onnxruntime`` or ``tensorrt`` backend; ``max_batch_size`` and dims from the card
  (and the engine's profile), dynamic batching with preferred sizes and a queue delay, one GPU instance;
- ``<name>_preprocess``: a Python-backend model, a frame (``UINT8 [H, W, 3]``, BGR) and its boxes
  (``FP32 [N, 4]``) in, the crops (the card's input: layout and dtype) out, made by edgereid's own preprocessing
  per the card (the server's Python environment needs edgereid and OpenCV; ``edgereid serve --repository`` runs
  these parts on a CPU, :mod:`edgereid.serving.repository_server`);
- ``<name>_ensemble``: the two joined, ``frame`` + ``boxes`` in, the model's outputs out.

The configs parse with Triton's own model-config protobuf (tritonclient ships it). The ONNX Runtime and TensorRT
backends are not in the PyPI Triton that PyTriton bundles: this repository is for NVIDIA's server images.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgereid.card import ModelCard, read_card
from edgereid.errors import EdgeReidError
from edgereid.fileio import atomic_write_text

PREPROCESS_MODEL_PY = '''"""Triton Python-backend preprocessing written by `edgereid triton-repo`: frame + boxes in, crops out."""

import json

import numpy as np

from edgereid.card import ModelCard
from edgereid.ops.geometry import plan_crops, validate_boxes
from edgereid.ops.preprocess import preprocess_batch, validate_frame


def crops_for(frame, boxes, card):
    """The model's input for every box of ``frame`` (validated and clipped), per ``card``."""
    frame = validate_frame(frame)
    clipped = validate_boxes(boxes, frame.shape)
    return preprocess_batch([frame], plan_crops(np.zeros(len(clipped), np.int64), clipped, card.input), card.input)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.card = ModelCard.from_json(config["parameters"]["edgereid_card"]["string_value"])

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            try:
                frame = pb_utils.get_input_tensor_by_name(request, "frame").as_numpy()
                boxes = pb_utils.get_input_tensor_by_name(request, "boxes").as_numpy()
                crops = crops_for(frame, boxes, self.card)
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("crops", crops)]))
            except Exception as exc:  # one bad request fails alone
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc)[:500])))
        return responses
'''

_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8"}


def _dims(values) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def _tensor(name: str, data_type: str, dims) -> str:
    return f'{{ name: "{name}" data_type: {data_type} dims: {_dims(dims)} }}'


def _model_entry(path: Path, out: Path, max_batch: int) -> tuple[str, ModelCard, int]:
    """Copy the model into ``out/<name>/1`` and return its config.pbtxt text, card and max batch."""
    if path.suffix == ".engine":
        from edgereid.engine_file import BatchProfile, read_sidecar

        sidecar = read_sidecar(path)
        card = ModelCard.from_dict(sidecar["card"])
        max_batch = BatchProfile.parse(sidecar["key"]["profile"]).max
        backend, filename = "tensorrt", "model.plan"
    elif path.suffix == ".onnx":
        card = read_card(path)
        backend, filename = "onnxruntime", "model.onnx"
    else:
        raise EdgeReidError(f"triton-repo takes .onnx and .engine models", got=str(path))
    name = card.name
    (out / name / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, out / name / "1" / filename)
    spec = card.input
    preferred = [b for b in (4, 8, 16, 32, 64) if b <= max_batch] or [max_batch]
    text = "\n".join([
        f'name: "{name}"', f'backend: "{backend}"', f"max_batch_size: {max_batch}",
        f"input [ {_tensor(spec.name, _TYPES[spec.dtype], spec.batch_shape(None)[1:])} ]",
        "output [ " + ", ".join(_tensor(o.name, "TYPE_FP32", o.dims) for o in card.outputs) + " ]",
        f"dynamic_batching {{ preferred_batch_size: {_dims(preferred)} max_queue_delay_microseconds: 2000 }}",
        "instance_group [ { kind: KIND_GPU count: 1 } ]", ""])
    return text, card, max_batch


def write_model_repository(models: list[str | Path], out: str | Path, max_batch: int = 32) -> list[Path]:
    """Write the repository (see the module docstring); the config files written."""
    out = Path(out)
    written = []
    for model in models:
        text, card, _ = _model_entry(Path(model), out, max_batch)
        name, spec = card.name, card.input
        written.append(atomic_write_text(out / name / "config.pbtxt", text))
        crops_dims = [-1, *spec.batch_shape(None)[1:]]
        preprocess = "\n".join([
            f'name: "{name}_preprocess"', 'backend: "python"', "max_batch_size: 0",
            f'input [ {_tensor("frame", "TYPE_UINT8", [-1, -1, 3])}, {_tensor("boxes", "TYPE_FP32", [-1, 4])} ]',
            f'output [ {_tensor("crops", _TYPES[spec.dtype], crops_dims)} ]',
            "instance_group [ { kind: KIND_CPU count: 2 } ]",
            "parameters { key: \"edgereid_card\" value: { string_value: " + _quoted(card.to_json()) + " } }", ""])
        (out / f"{name}_preprocess" / "1").mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / f"{name}_preprocess" / "1" / "model.py", PREPROCESS_MODEL_PY)
        written.append(atomic_write_text(out / f"{name}_preprocess" / "config.pbtxt", preprocess))
        outputs = [o.name for o in card.outputs]
        ensemble = "\n".join([
            f'name: "{name}_ensemble"', 'platform: "ensemble"', "max_batch_size: 0",
            f'input [ {_tensor("frame", "TYPE_UINT8", [-1, -1, 3])}, {_tensor("boxes", "TYPE_FP32", [-1, 4])} ]',
            "output [ " + ", ".join(_tensor(o.name, "TYPE_FP32", [-1, *o.dims]) for o in card.outputs) + " ]",
            "ensemble_scheduling { step [",
            f'  {{ model_name: "{name}_preprocess" model_version: -1 input_map {{ key: "frame" value: "frame" }} '
            f'input_map {{ key: "boxes" value: "boxes" }} output_map {{ key: "crops" value: "crops" }} }},',
            f'  {{ model_name: "{name}" model_version: -1 input_map {{ key: "{spec.name}" value: "crops" }} '
            + " ".join(f'output_map {{ key: "{o}" value: "{o}" }}' for o in outputs) + " }",
            "] }", ""])
        (out / f"{name}_ensemble" / "1").mkdir(parents=True, exist_ok=True)
        written.append(atomic_write_text(out / f"{name}_ensemble" / "config.pbtxt", ensemble))
    return written


def _quoted(text: str) -> str:
    """A protobuf text-format string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
