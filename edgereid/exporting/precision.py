"""Precision conversion with its accuracy gate: FP32 ONNX in, FP16, BF16-gated or INT8 Q/DQ ONNX out, or an error.

Crops from the calibration folder are split alternately: even-numbered ones calibrate (FP16 range
check, INT8 scales), odd-numbered ones are held out for the gate, so the gate never grades the data
the scales were fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.card import BF16_GATE_METADATA_KEY, ModelCard, card_from_metadata
from edgereid.data.synthetic import WorldSpec
from edgereid.errors import ExportError
from edgereid.exporting.gate import GateReport, measure

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


@dataclass
class Converted:
    """The converted graph (``onnx.ModelProto``), its gate report (None for FP32) and what was kept in FP32."""

    model: object
    precision: str
    report: GateReport | None
    notes: str = ""


def _batches(crops: np.ndarray, size: int = 32) -> list[np.ndarray]:
    return [crops[i:i + size] for i in range(0, len(crops), size)]


# Where FP16's range check and gate get crops when the user gives none: a world no model was trained on.
SYNTHETIC_GATE_WORLD = WorldSpec(seed=660, identities=30, cameras=2, frames_per_camera=12)


def synthetic_gate_crops(card: ModelCard, count: int = 96) -> tuple[np.ndarray, str]:
    """Normalised crops ``[N, 3, H, W]`` rendered from a held-out synthetic world for the card's task (persons
    for ReID and keypoint models, aligned faces for face models), and a note saying so for the sidecar."""
    from edgereid.data.scene_crops import scene_crops
    from edgereid.ops.preprocess import normalise_batch

    spec = card.input
    persons, faces = scene_crops(SYNTHETIC_GATE_WORLD, person_spec=None if card.task == "face" else spec,
                                 face_spec=spec if card.task == "face" else None, progress=False)
    crops = (faces if card.task == "face" else persons).select(np.arange(min(count, len(persons or faces))))
    note = (f"gated on {len(crops)} {card.task} crops rendered from the synthetic world (seed "
            f"{SYNTHETIC_GATE_WORLD.seed}), no --calib given")
    return normalise_batch(crops.images, spec, placement=crops.placement), note


def convert(onnx_path: str | Path, precision: str, crops: np.ndarray | None = None,
            calibration_method: str = "minmax", enforce_gate: bool = True, int8_target: str = "tensorrt",
            uint8_input: bool = False) -> Converted:
    """Convert ``onnx_path`` to ``precision``; ``crops`` (normalised ``[N, 3, H, W]``) calibrate and gate.
    FP16 and BF16 need no calibration: without crops they are gated on synthetic crops of the card's task
    (:func:`synthetic_gate_crops`, said in the notes); BF16 keeps the FP32 graph and records the passed gate
    for OpenVINO (:mod:`edgereid.exporting.bf16`); INT8 needs the user's crops and is written in the Q/DQ form
    of ``int8_target`` (``tensorrt`` or ``cpu``, see :mod:`edgereid.exporting.int8`).

    ``uint8_input`` first moves the normalisation into the graph (:mod:`edgereid.exporting.pixel_input`; FP32,
    BF16 and INT8): the folded FP32 graph must reproduce the original on the crops, and the precision's gate then
    grades the converted graph against the folded one on the same crops as uint8 pixels."""
    import onnx

    from edgereid.exporting.fp16 import FP16_SAFE_MAX, emulate_fp16, plan_fp16, tensor_ranges, to_fp16
    from edgereid.exporting.bf16 import emulate_bf16
    from edgereid.exporting.int8 import quantize_int8

    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision '{precision}'", expected=str(PRECISIONS))
    model = onnx.load(str(onnx_path))
    if precision == "fp32" and not uint8_input:
        return Converted(model, precision, None)
    if precision == "fp16" and uint8_input:
        raise ExportError("--uint8-input is for the CPU precisions", expected="fp32, bf16 or int8", got="fp16",
                          fix="convert to fp16 without --uint8-input (TensorRT reads float inputs)")
    card = card_from_metadata({p.key: p.value for p in model.metadata_props}, str(onnx_path))
    source_note = ""
    if precision in ("fp32", "fp16", "bf16") and crops is None:
        crops, source_note = synthetic_gate_crops(card)
    if crops is None or len(crops) < 4:
        raise ExportError(f"{precision} needs calibration crops for its range check and accuracy gate",
                          expected="a folder with at least 4 crop images", got="none" if crops is None else str(len(crops)),
                          fix="pass --calib DIR with crops like the ones the cameras produce")
    if uint8_input:
        model, card, crops, fold_note = _fold_checked(model, card, crops)
        source_note = f"{fold_note}; {source_note}" if source_note else fold_note
        if precision == "fp32":
            return Converted(model, precision, None, source_note)
    calibration, held_out = crops[0::2], crops[1::2]
    if precision == "fp16":
        peaks = tensor_ranges(model, _batches(calibration))
        plan = plan_fp16(model, {name for name, peak in peaks.items() if peak > FP16_SAFE_MAX})
        converted, graded, notes = to_fp16(model, plan), emulate_fp16(model, plan), plan.summary()
    elif precision == "bf16":
        converted, graded = onnx.ModelProto.FromString(model.SerializeToString()), emulate_bf16(model)
        notes = "FP32 graph kept; OpenVINO applies BF16 when it compiles it (gated on emulated BF16 rounding)"
    else:
        converted = quantize_int8(model, _batches(calibration), calibration_method, target=int8_target)
        graded, notes = converted, (f"Q/DQ INT8 for {int8_target}, {calibration_method} calibration on "
                                    f"{len(calibration)} crops")
    notes = f"{notes}; {source_note}" if source_note else notes
    report = measure(model, graded, held_out, card, precision)
    if precision == "bf16" and report.passed:
        entry = converted.metadata_props.add()
        entry.key, entry.value = BF16_GATE_METADATA_KEY, "passed"
    if enforce_gate and not report.passed:
        raise ExportError(f"{onnx_path} failed the {precision} accuracy gate; no engine or model was written",
                          got=report.summary(),
                          fix="calibrate on crops closer to the deployment data, or use a higher precision")
    return Converted(converted, precision, report, notes)


# The folded graph must reproduce the original to float rounding: the largest output difference, relative to
# the largest output magnitude, it may show (measured on the ReID student: about 1e-6).
FOLD_TOLERANCE = 1e-4


def _fold_checked(model, card: ModelCard, crops: np.ndarray):
    """The uint8-input graph, its card, ``crops`` as uint8 pixels and a note, after checking the folded graph
    against the original on the crops."""
    from edgereid.exporting.gate import run_model
    from edgereid.exporting.pixel_input import fold_normalisation, to_pixels

    folded, folded_card = fold_normalisation(model, card)
    pixels = to_pixels(crops, card)
    reference, candidate = run_model(model, crops), run_model(folded, pixels)
    worst = max(float(np.abs(reference[k] - candidate[k]).max() / max(np.abs(reference[k]).max(), 1e-12))
                for k in reference)
    if not worst <= FOLD_TOLERANCE:
        raise ExportError("the uint8-input graph does not reproduce the original", expected=f"relative output "
                          f"difference <= {FOLD_TOLERANCE}", got=f"{worst:.3g}",
                          fix="convert without --uint8-input, and report the model")
    return folded, folded_card, pixels, f"normalisation folded into the graph (uint8 input; {worst:.1e} relative " \
                                        "difference to the original)"


def save_converted(converted: Converted, out: str | Path) -> Path:
    """Write the converted graph atomically."""
    from edgereid.fileio import atomic_write_bytes

    return atomic_write_bytes(out, converted.model.SerializeToString())
