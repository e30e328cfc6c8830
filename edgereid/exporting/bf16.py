"""BF16 for OpenVINO on CPUs with AMX or AVX-512 BF16, gated on an emulation of its rounding.

OpenVINO's BF16 hint is applied when it compiles the FP32 graph, so the file stays FP32: ``edgereid convert
--precision bf16`` only records that the model passed the gate (:data:`edgereid.card.BF16_GATE_METADATA_KEY`),
and the OpenVINO backend then runs it in BF16 by default. The gate grades an emulation of what OpenVINO's CPU
plugin does under its BF16 hint: the dot-product layers (:data:`BF16_OPS`) read their activations and weights
rounded to BF16 and accumulate in FP32, with FP32 biases; the other layers (normalisations, reductions,
element-wise tails) stay FP32. The rounding is ``Cast(BFLOAT16) -> Cast(FLOAT)`` on each such input, which ONNX
Runtime rounds to nearest even, as the CPU's conversion instructions do. Rounding everything instead (BN-neck
statistics included) would fail models that OpenVINO runs well: the bundled ReID student measured cosine 0.978
that way against 0.9993 under OpenVINO itself.
"""

from __future__ import annotations

from edgereid.exporting.fp16 import FLOAT, float_tensors

BFLOAT16 = 16  # onnx.TensorProto.BFLOAT16
# the layers OpenVINO's CPU plugin runs in BF16 under its hint (AMX / AVX-512 BF16 dot products, FP32 accumulation)
BF16_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})


def emulate_bf16(model):
    """A copy of the FP32 ``onnx.ModelProto`` whose :data:`BF16_OPS` read BF16-rounded inputs and weights."""
    import onnx
    from onnx import helper

    out = onnx.ModelProto.FromString(model.SerializeToString())
    graph = out.graph
    floats = float_tensors(out)
    nodes = []

    def rounding(source: str, target: str) -> list:
        return [helper.make_node("Cast", [source], [f"{target}__bf16"], to=BFLOAT16),
                helper.make_node("Cast", [f"{target}__bf16"], [target], to=FLOAT)]

    rounded: dict[str, str] = {}  # tensor -> its BF16-rounded copy, made once, before its first reader
    for node in graph.node:
        if node.op_type in BF16_OPS:
            for slot, name in enumerate(node.input):
                if name in floats and not (slot == 2 and node.op_type != "MatMul"):  # biases stay FP32
                    if name not in rounded:
                        rounded[name] = f"{name}__bf16rounded"
                        nodes += rounding(name, rounded[name])
                    node.input[slot] = rounded[name]
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(out, full_check=True)
    return out
