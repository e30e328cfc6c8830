"""INT8 ONNX graphs with explicit quantize/dequantize (Q/DQ) nodes, calibrated on real crops.

TensorRT 11 accepts INT8 only as explicit Q/DQ (the implicit calibrator API is gone), and strongly
typed builds on 10.x read it the same way. The graph is quantized with ONNX Runtime's static
quantizer in the form TensorRT expects: symmetric INT8 activations (zero point 0), symmetric
per-output-channel INT8 weights, float biases, Q/DQ on the *inputs* of the weighted layers (Conv,
MatMul, Gemm) only, except the first and the last of them. The graph's tail (L2 normalisation, softmax
and what follows) and normalisation layers stay in float, as in the FP16 plan. ONNX Runtime runs such
a graph with its quantize/dequantize rounding exactly and computes each layer on the dequantized
values, which equals INT8 arithmetic up to the order of accumulation, so the gate sees the real
quantization error.

That graph is slow on a CPU (ONNX Runtime runs the dequantized float layers: 0.3x FP32 measured), so
``target="cpu"`` writes the form CPU kernels fuse into integer ones (ONNX Runtime's QLinearConv/MatMulInteger,
OpenVINO's VNNI/AMX INT8): unsigned asymmetric activations (U8) with per-channel symmetric signed weights
(S8), Q/DQ around inputs *and* outputs of every quantizable op so the chain stays integer. The graph records
its target in the metadata key :data:`TARGET_KEY`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from edgereid.card import INT8_TARGET_METADATA_KEY
from edgereid.errors import ExportError
from edgereid.exporting.fp16 import plan_fp16
from edgereid.exporting.pixel_input import PIXEL_NODE_PREFIX

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
INT8_TARGETS = ("tensorrt", "cpu")
TARGET_KEY = INT8_TARGET_METADATA_KEY  # metadata: which runtime the Q/DQ form was made for
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


def _reader(input_name: str, batches: list[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        """Feeds the calibration batches once each."""

        def __init__(self) -> None:
            self._items: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._items, None)
            return None if batch is None else {input_name: batch}

    return Batches()


def quantize_int8(model, batches: list[np.ndarray], method: str = "minmax", keep_in_float: tuple[str, ...] | None = None,
                  target: str = "tensorrt"):
    """The Q/DQ INT8 version of ``model`` (an ``onnx.ModelProto``) for ``target``, calibrated on ``batches``.

    ``keep_in_float`` names weighted layers left in float, from ``first`` and ``last``; None: both for
    ``tensorrt``, the last for ``cpu``. The last layer projects onto the embedding just before the BNNeck rescales
    every channel, and one activation scale for its input crushes the small channels (measured on the bundled ReID
    student: mean cosine to FP32 0.57 quantized, 0.95 not, TensorRT form; 0.876 and 0.997 in the CPU form). The
    first one is quantized for the CPU because OpenVINO then runs from the (uint8) input to the last layer in
    integers (256x128 ReID student with uint8 input, batch 32, one run: 2.69x ONNX Runtime FP32 with the first
    layer quantized and the last in float, 2.68x with both quantized). The normalisation a uint8-input graph starts
    with (:mod:`edgereid.exporting.pixel_input`) stays in float."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if method not in CALIBRATION_METHODS:
        raise ExportError(f"unknown calibration method '{method}'", expected=str(CALIBRATION_METHODS))
    if target not in INT8_TARGETS:
        raise ExportError(f"unknown INT8 target '{target}'", expected=" or ".join(INT8_TARGETS))
    if not batches:
        raise ExportError("INT8 needs calibration data", expected="at least one batch of crops",
                          fix="pass --calib DIR with images of what the cameras see")
    plan = plan_fp16(model)  # the same tail rule: what plan_fp16 keeps in FP32 is not quantized either
    excluded = [n.name for n in model.graph.node if n.name and n.name in plan.kept_fp32]
    weighted = [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.name]
    excluded += [n.name for n in model.graph.node if n.name.startswith(PIXEL_NODE_PREFIX)]
    if keep_in_float is None:
        keep_in_float = ("first", "last") if target == "tensorrt" else ("last",)
    if weighted:
        excluded += [weighted[0 if end == "first" else -1] for end in keep_in_float]
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    with tempfile.TemporaryDirectory(prefix="edgereid-int8-") as tmp:
        source, written = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(source))
        quantize_static(str(source), str(written), _reader(model.graph.input[0].name, batches),
                        quant_format=QuantFormat.QDQ,
                        nodes_to_exclude=excluded, per_channel=True, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method], **_target_options(target))
        quantized = onnx.load(str(written))
    for prop in model.metadata_props:  # keep the card and other metadata
        if prop.key != TARGET_KEY:
            quantized.metadata_props.add(key=prop.key, value=prop.value)
    quantized.metadata_props.add(key=TARGET_KEY, value=target)
    return quantized


def _target_options(target: str) -> dict:
    """quantize_static's keywords for each target's Q/DQ form (see the module text)."""
    from onnxruntime.quantization import QuantType

    if target == "cpu":
        return dict(op_types_to_quantize=None, activation_type=QuantType.QUInt8,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    return dict(op_types_to_quantize=list(QUANTIZED_OPS), activation_type=QuantType.QInt8,
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                               "QuantizeBias": False,  # TensorRT takes float biases, not INT32 DQ
                               # Q/DQ on the inputs of weighted layers only, as TensorRT recommends
                               "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS)})
