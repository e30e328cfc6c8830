"""FP16 ONNX graphs for strongly typed TensorRT builds, and an FP16 emulation that ONNX Runtime can gate.

TensorRT 11 (and strongly typed networks on 10.x) take their precision from the ONNX file, so the
FP16 engine is built from an FP16 graph. :func:`plan_fp16` decides, node by node, what runs in FP16:

- only ops on :data:`FP16_OPS` (convolutions, matrix products, activations, element-wise, pooling,
  data movement) are candidates;
- L2 normalisation (``ReduceL2``/``LpNormalization``) and ``Softmax`` stay in FP32 with everything
  downstream of them (the embedding's final division, the soft-argmax read-out): these reductions lose
  range or precision in FP16 and cost almost nothing in FP32 at the graph's tail; normalisation layers
  (batch, layer, group, instance) keep their statistics in FP32;
- any tensor whose magnitude on calibration data exceeds :data:`FP16_SAFE_MAX` keeps its producer and
  its consumers in FP32 (:func:`tensor_ranges`).

:func:`to_fp16` writes the typed graph (FP32 graph inputs and outputs; casts at every region border;
FP16 weights). ONNX Runtime on a CPU would compute most FP16 nodes in FP32 internally, so it cannot
be trusted to show FP16 error; :func:`emulate_fp16` instead keeps the FP32 graph and rounds every
FP16-region tensor (weights, node outputs and region inputs) to FP16 and back, which reproduces FP16
*storage* between layers (accumulation stays FP32, as on tensor cores).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgereid.errors import ExportError
from edgereid.ort_session import open_session

FP16_MAX = 65504.0
FP16_SAFE_MAX = 0.5 * FP16_MAX  # headroom: calibration data does not show the worst case
FP16_TINY = 2.0 ** -24  # smallest FP16 subnormal: weights below it would become 0

FP16_OPS = frozenset({
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid",
    "HardSwish", "Tanh", "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Max", "Min", "GlobalAveragePool",
    "AveragePool", "MaxPool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "Flatten", "Reshape", "Transpose",
    "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Identity", "Expand", "Resize", "Pad", "Gather",
})
# Final reductions computed in FP32 together with everything downstream of them (cheap: the graph's tail).
FP32_TAIL_OPS = frozenset({"ReduceL2", "LpNormalization", "Softmax", "LogSoftmax"})
# Normalisation layers whose statistics stay in FP32 (only the layer itself).
FP32_NORM_OPS = frozenset({"BatchNormalization", "LayerNormalization", "GroupNormalization", "InstanceNormalization"})
# Float inputs that are parameters of fixed type, never data (Resize's roi and scales stay float32).
FIXED_FLOAT_INPUTS = {"Resize": frozenset({1, 2})}

FLOAT = 1  # onnx.TensorProto.FLOAT
FLOAT16 = 10  # onnx.TensorProto.FLOAT16


@dataclass(frozen=True)
class Fp16Plan:
    """Which nodes (by index in the graph) run in FP16, and why the others do not."""

    fp16_nodes: frozenset[int]
    kept_fp32: dict[str, str] = field(default_factory=dict)  # node name -> reason

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for reason in self.kept_fp32.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        kept = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "none"
        return f"{len(self.fp16_nodes)} nodes in FP16; kept in FP32: {kept}"


def _fits_fp16(array: np.ndarray) -> bool:
    """No value overflows FP16, and a scalar constant (an epsilon, a scale) does not flush to zero in it.
    Tiny entries of weight tensors may flush: they contribute nothing measurable."""
    magnitude = np.abs(array.astype(np.float64))
    if magnitude.size == 0:
        return True
    if magnitude.max() > FP16_MAX:
        return False
    return not (magnitude.size == 1 and 0 < magnitude.item() < FP16_TINY)


def float_tensors(model) -> set[str]:
    """Names of every FLOAT tensor in the graph (inputs, initializers, intermediate values, outputs)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    names = {i.name for i in graph.initializer if i.data_type == FLOAT}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        if info.type.tensor_type.elem_type == FLOAT:
            names.add(info.name)
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None and value.data_type == FLOAT:
                names.update(node.output)
    return names


def _node_name(node, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def plan_fp16(model, overflowing: set[str] = frozenset()) -> Fp16Plan:
    """Decide the FP16 region (see the module text); ``overflowing`` names tensors out of FP16 range."""
    from onnx import numpy_helper

    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.data_type == FLOAT}
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" else None
        if value is not None and value.data_type == FLOAT:
            constants[node.output[0]] = numpy_helper.to_array(value)
    huge_weights = {name for name, array in constants.items() if not _fits_fp16(array)}
    kept: dict[int, str] = {}
    for i, node in enumerate(graph.node):
        if node.op_type in FP32_TAIL_OPS:
            kept[i] = f"{node.op_type} (final reduction)"
        elif node.op_type in FP32_NORM_OPS:
            kept[i] = f"{node.op_type} (normalisation statistics)"
        elif any(name in overflowing for name in node.output):
            kept[i] = "output beyond FP16 range"
        elif any(name in overflowing for name in node.input):
            kept[i] = "input beyond FP16 range"
        elif any(name in huge_weights for name in node.input):
            kept[i] = "weights or constants beyond FP16 range"
    # everything downstream of a final reduction stays FP32 too (graph nodes are topologically sorted)
    tainted = {name for i, node in enumerate(graph.node) if node.op_type in FP32_TAIL_OPS for name in node.output}
    for i, node in enumerate(graph.node):
        if any(name in tainted for name in node.input):
            kept.setdefault(i, "downstream of a final reduction")
            tainted.update(node.output)
    fp16 = frozenset(i for i, node in enumerate(graph.node) if i not in kept and node.op_type in FP16_OPS)
    reasons = {_node_name(graph.node[i], i): reason for i, reason in kept.items()}
    return Fp16Plan(fp16, reasons)


def _data_inputs(node, floats: set[str]) -> list[tuple[int, str]]:
    fixed = FIXED_FLOAT_INPUTS.get(node.op_type, frozenset())
    return [(k, name) for k, name in enumerate(node.input) if name and name in floats and k not in fixed]


def _rewrite(model, plan: Fp16Plan, emulate: bool):
    """Shared walk of :func:`to_fp16` and :func:`emulate_fp16`: the FP16 region's float tensors either
    become FLOAT16 (with casts at the borders) or are rounded through FLOAT16 (types unchanged)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    floats = float_tensors(model)
    initializers = {i.name: i for i in graph.initializer}
    producer_region = {name: (i in plan.fp16_nodes) for i, node in enumerate(graph.node) for name in node.output}
    graph_outputs = {o.name for o in graph.output}
    new_nodes, new_inits = [], []
    converted: dict[tuple[str, int], str] = {}  # (tensor, target type) -> name of the cast/rounded copy

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in converted:
            if name in initializers and to == FLOAT16:
                array = numpy_helper.to_array(initializers[name]).astype(np.float16)
                out = f"{name}__fp16"
                new_inits.append(numpy_helper.from_array(array.astype(np.float32) if emulate else array, out))
            elif emulate:  # round through FP16, stay FLOAT
                half, out = f"{name}__to_fp16", f"{name}__fp16_rounded"
                new_nodes.append(helper.make_node("Cast", [name], [half], to=FLOAT16, name=f"{half}_cast"))
                new_nodes.append(helper.make_node("Cast", [half], [out], to=FLOAT, name=f"{out}_cast"))
            else:
                out = f"{name}__as_{'fp16' if to == FLOAT16 else 'fp32'}"
                new_nodes.append(helper.make_node("Cast", [name], [out], to=to, name=f"{out}_cast"))
            converted[key] = out
        return converted[key]

    for i, node in enumerate(graph.node):
        in_fp16 = i in plan.fp16_nodes
        for k, name in _data_inputs(node, floats):
            from_fp16 = producer_region.get(name, False)
            if in_fp16 and not from_fp16:
                node.input[k] = cast(name, FLOAT16)
            elif not in_fp16 and from_fp16 and not emulate:
                node.input[k] = cast(name, FLOAT)
        new_nodes.append(node)
        if in_fp16:
            for k, name in enumerate(node.output):
                if name not in floats:
                    continue
                if emulate:  # the node writes a raw FLOAT; what everyone reads is its FP16 rounding
                    raw = f"{name}__raw"
                    node.output[k] = raw
                    half = f"{name}__to_fp16"
                    new_nodes.append(helper.make_node("Cast", [raw], [half], to=FLOAT16, name=f"{half}_cast"))
                    new_nodes.append(helper.make_node("Cast", [half], [name], to=FLOAT, name=f"{name}_round"))
                elif name in graph_outputs:  # graph outputs stay FLOAT: the node writes FP16, a cast the output
                    half = f"{name}__fp16"
                    node.output[k] = half
                    new_nodes.append(helper.make_node("Cast", [half], [name], to=FLOAT, name=f"{name}_to_fp32"))
                    producer_region[name] = False  # later FP16 readers cast it back (rare; still correct)
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]
    return model


def to_fp16(model, plan: Fp16Plan):
    """The FP16 graph per ``plan``: FP16 weights and activations in the region, FP32 graph I/O."""
    import onnx

    out = _rewrite(model, plan, emulate=False)
    onnx.checker.check_model(out, full_check=True)
    return out


def emulate_fp16(model, plan: Fp16Plan):
    """The FP32 graph with FP16 storage emulated in the region (for an honest ONNX Runtime gate)."""
    import onnx

    out = _rewrite(model, plan, emulate=True)
    onnx.checker.check_model(out, full_check=True)
    return out


def tensor_ranges(model, batches: list[np.ndarray]) -> dict[str, float]:
    """The largest magnitude each float tensor reaches on ``batches`` (ONNX Runtime, all tensors as outputs)."""
    import onnx

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    floats = float_tensors(probe)
    existing = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name in floats and name not in existing:
                probe.graph.output.append(onnx.helper.make_tensor_value_info(name, FLOAT, None))
                existing.add(name)
    session = open_session(probe.SerializeToString(), error=ExportError)
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    peaks = dict.fromkeys(names, 0.0)
    for batch in batches:
        for name, value in zip(names, session.run(names, {input_name: batch})):
            if value.size:
                peaks[name] = max(peaks[name], float(np.abs(value).max()))
    return peaks
