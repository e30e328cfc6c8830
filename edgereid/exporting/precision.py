"""Precision conversion with its accuracy gate: FP32 ONNX in, FP16 or INT8 Q/DQ ONNX out, or an error.

Crops from the calibration folder are split alternately: even-numbered ones calibrate (FP16 range
check, INT8 scales), odd-numbered ones are held out for the gate, so the gate never grades the data
the scales were fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.card import card_from_metadata
from edgereid.errors import ExportError
from edgereid.exporting.gate import GateReport, measure

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class Converted:
    """The converted graph (``onnx.ModelProto``), its gate report (None for FP32) and what was kept in FP32."""

    model: object
    precision: str
    report: GateReport | None
    notes: str = ""


def _batches(crops: np.ndarray, size: int = 32) -> list[np.ndarray]:
    return [crops[i:i + size] for i in range(0, len(crops), size)]


def convert(onnx_path: str | Path, precision: str, crops: np.ndarray | None = None,
            calibration_method: str = "minmax", enforce_gate: bool = True) -> Converted:
    """Convert ``onnx_path`` to ``precision``; ``crops`` (normalised ``[N, 3, H, W]``) calibrate and gate."""
    import onnx

    from edgereid.exporting.fp16 import FP16_SAFE_MAX, emulate_fp16, plan_fp16, tensor_ranges, to_fp16
    from edgereid.exporting.int8 import quantize_int8

    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision '{precision}'", expected=str(PRECISIONS))
    model = onnx.load(str(onnx_path))
    if precision == "fp32":
        return Converted(model, precision, None)
    if crops is None or len(crops) < 4:
        raise ExportError(f"{precision} needs calibration crops for its range check and accuracy gate",
                          expected="a folder with at least 4 crop images", got="none" if crops is None else str(len(crops)),
                          fix="pass --calib DIR with crops like the ones the cameras produce")
    card = card_from_metadata({p.key: p.value for p in model.metadata_props}, str(onnx_path))
    calibration, held_out = crops[0::2], crops[1::2]
    if precision == "fp16":
        peaks = tensor_ranges(model, _batches(calibration))
        plan = plan_fp16(model, {name for name, peak in peaks.items() if peak > FP16_SAFE_MAX})
        converted, graded, notes = to_fp16(model, plan), emulate_fp16(model, plan), plan.summary()
    else:
        converted = quantize_int8(model, _batches(calibration), calibration_method)
        graded, notes = converted, f"Q/DQ INT8, {calibration_method} calibration on {len(calibration)} crops"
    report = measure(model, graded, held_out, card, precision)
    if enforce_gate and not report.passed:
        raise ExportError(f"{onnx_path} failed the {precision} accuracy gate; no engine or model was written",
                          got=report.summary(),
                          fix="calibrate on crops closer to the deployment data, or use a higher precision")
    return Converted(converted, precision, report, notes)


def save_converted(converted: Converted, out: str | Path) -> Path:
    """Write the converted graph atomically."""
    from edgereid.fileio import atomic_write_bytes

    return atomic_write_bytes(out, converted.model.SerializeToString())
