"""FP16 and INT8 conversion with the accuracy gate, on the bundled students and on crafted graphs."""

import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgereid.card import read_card  # noqa: E402
from edgereid.data.crop_folder import load_crops  # noqa: E402
from edgereid.errors import ExportError, InputError  # noqa: E402
from edgereid.exporting.fp16 import FLOAT16, emulate_fp16, plan_fp16, tensor_ranges, to_fp16  # noqa: E402
from edgereid.exporting.gate import measure, rank1_agreement  # noqa: E402
from edgereid.exporting.precision import convert  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = {"reid": "persons", "keypoints": "persons", "face": "faces"}


@pytest.fixture(scope="module")
def crop_folders(tmp_path_factory):
    """Person and face crops of a held-out world (seed 650) as PNG folders, as a user would supply them."""
    import cv2

    from edgereid.card import InputSpec
    from edgereid.data.synthetic import WorldSpec
    from edgereid.data.scene_crops import scene_crops

    root = tmp_path_factory.mktemp("calib")
    persons, faces = scene_crops(WorldSpec(seed=650, identities=30, cameras=2, frames_per_camera=30),
                                 person_spec=InputSpec(height=128, width=64), face_spec=InputSpec(height=32, width=32),
                                 progress=False)
    for name, crops in (("persons", persons), ("faces", faces)):
        (root / name).mkdir()
        for i, image in enumerate(crops.images[:160]):
            cv2.imwrite(str(root / name / f"{i:04d}.png"), image)
    return root


@pytest.fixture(scope="module")
def converted(crop_folders):
    """Every bundled student converted to FP16 and INT8 once (the gate enforced), for the tests below."""
    out = {}
    for model in BUNDLED:
        path = ROOT / "samples" / "models" / model / "model.onnx"
        crops = load_crops(crop_folders / BUNDLED[model], read_card(path).input)
        for precision in ("fp16", "int8"):
            out[model, precision] = convert(path, precision, crops)
        out[model, "int8_cpu"] = convert(path, "int8", crops, int8_target="cpu")
    return out


CASES = [(m, p) for m in sorted(BUNDLED) for p in ("fp16", "int8")]


@pytest.mark.parametrize("model", sorted(BUNDLED))
def test_the_cpu_int8_graph_passes_the_gate_and_fuses_into_integer_kernels(model, converted, tmp_path):
    """Unsigned activations, the target in the metadata, and ONNX Runtime's optimiser turns nearly every
    convolution into an integer QLinearConv (the TensorRT form stays dequantize-then-float-Conv on a CPU)."""
    import onnxruntime as ort

    from edgereid.exporting.int8 import TARGET_KEY

    fused = {}
    for precision in ("int8", "int8_cpu"):
        result = converted[model, precision]
        assert result.report.passed, result.report.summary()
        path, optimised = tmp_path / f"{precision}.onnx", tmp_path / f"{precision}.opt.onnx"
        onnx.save(result.model, str(path))
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(optimised)
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        fused[precision] = sum(n.op_type == "QLinearConv" for n in onnx.load(str(optimised)).graph.node)
    cpu = converted[model, "int8_cpu"].model
    assert {p.key: p.value for p in cpu.metadata_props}[TARGET_KEY] == "cpu"
    activation_points = [i for i in cpu.graph.initializer if i.name.endswith("_zero_point") and not i.dims]
    assert activation_points and all(i.data_type == TensorProto.UINT8 for i in activation_points)
    convolutions = sum(n.op_type == "Conv" for n in cpu.graph.node)
    assert fused["int8_cpu"] >= 0.8 * convolutions and fused["int8"] <= 0.1 * convolutions, (fused, convolutions)
    from edgereid.runtime.backends.onnxruntime import OnnxRuntimeBackend

    with pytest.warns(RuntimeWarning, match="--target cpu"):
        OnnxRuntimeBackend(tmp_path / "int8.onnx").close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the CPU form loads without the warning
        OnnxRuntimeBackend(tmp_path / "int8_cpu.onnx").close()


@pytest.mark.parametrize("model, precision", CASES)
def test_bundled_students_pass_the_gate(model, precision, converted):
    result = converted[model, precision]
    report = result.report
    assert report.passed, report.summary()
    if model == "keypoints":
        assert report.mean_keypoint_px is not None and report.mean_cosine is None
    else:
        assert report.mean_cosine > 0.98 and report.rank1_agreement >= 0.85
    types = {i.data_type for i in result.model.graph.initializer}
    if precision == "fp16":
        assert FLOAT16 in types
        assert {o.type.tensor_type.elem_type for o in result.model.graph.output} == {TensorProto.FLOAT}
    else:
        assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in result.model.graph.node}
    assert read_card(ROOT / "samples" / "models" / model / "model.onnx") == _card_of(result.model)


@pytest.mark.parametrize("model, precision", CASES)
def test_bundled_students_parse_and_build_with_tensorrt_rtx(model, precision, converted):
    trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx-cu12 (the dev extra) is not installed")
    from edgereid.exporting.engine import build_plan

    plan, _ = build_plan(trt, converted[model, precision].model.SerializeToString(), f"{model} {precision}",
                         target=trt.ComputeCapability.SM86)
    assert len(plan) > 10_000


def _card_of(model):
    from edgereid.card import card_from_metadata

    return card_from_metadata({p.key: p.value for p in model.metadata_props}, "converted model")


def test_fp16_plan_keeps_the_l2_tail_in_fp32():
    model = onnx.load(str(ROOT / "samples/models/reid/model.onnx"))
    plan = plan_fp16(model)
    kept_ops = {n.op_type for i, n in enumerate(model.graph.node) if i not in plan.fp16_nodes}
    assert {"ReduceL2", "Div", "BatchNormalization"} <= kept_ops
    assert "Conv" not in kept_ops
    assert "final reduction" in plan.summary()


def _scaling_graph(factor: float):
    """x -> Conv(1x1, weight=factor) -> Relu -> Mul(1/factor) -> y: an intermediate of size x*factor."""
    weight = numpy_helper.from_array(np.full((1, 1, 1, 1), factor, np.float32), "w")
    inverse = numpy_helper.from_array(np.array(1.0 / factor, np.float32), "inv")
    nodes = [helper.make_node("Conv", ["x", "w"], ["big"], name="conv"),
             helper.make_node("Relu", ["big"], ["act"], name="relu"),
             helper.make_node("Mul", ["act", "inv"], ["y"], name="scale")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1, 4, 4])], [weight, inverse])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model, x):
    from edgereid.exporting.gate import _session

    return _session(model).run(None, {"x": x})[0]


def test_range_check_keeps_overflowing_tensors_in_fp32():
    model = _scaling_graph(1e4)  # weights fit FP16; activations of 3e4 x 10 do not
    x = np.full((2, 1, 4, 4), 30.0, np.float32)
    naive = plan_fp16(model)
    assert np.isinf(_run(emulate_fp16(model, naive), x)).all()  # 3e5 does not fit FP16: the emulation shows it
    peaks = tensor_ranges(model, [x])
    assert peaks["big"] == pytest.approx(3e5)
    assert "weights or constants beyond FP16 range" in plan_fp16(_scaling_graph(1e5)).kept_fp32.values()
    assert "weights or constants beyond FP16 range" in plan_fp16(_scaling_graph(1e-9)).kept_fp32.values()
    plan = plan_fp16(model, {name for name, peak in peaks.items() if peak > 32752})
    assert set(plan.kept_fp32) == {"conv", "relu", "scale"}  # every node touching the 3e5 tensors
    np.testing.assert_allclose(_run(emulate_fp16(model, plan), x), 30.0, rtol=1e-3)
    typed = to_fp16(model, plan)
    onnx.checker.check_model(typed, full_check=True)


def test_emulation_rounds_to_fp16_between_nodes():
    model = _scaling_graph(1.0)
    x = np.full((1, 1, 4, 4), 1.0 + 2 ** -12, np.float32)  # not representable in FP16 (10-bit mantissa)
    plan = plan_fp16(model)
    assert _run(model, x)[0, 0, 0, 0] == np.float32(1.0 + 2 ** -12)
    assert _run(emulate_fp16(model, plan), x)[0, 0, 0, 0] == 1.0


def test_bf16_emulation_rounds_dot_product_inputs_and_keeps_the_rest_fp32():
    """OpenVINO's BF16: the Conv reads its input and weight rounded to BF16 (7 mantissa bits, so 1 + 2^-9 -> 1);
    the element-wise Mul after it keeps its FP32 constant."""
    from edgereid.exporting.bf16 import emulate_bf16

    factor = 1.0 + 2 ** -9
    model = _scaling_graph(factor)
    x = np.full((1, 1, 4, 4), factor, np.float32)
    assert _run(model, x)[0, 0, 0, 0] == pytest.approx(factor, abs=1e-7)
    emulated = _run(emulate_bf16(model), x)
    assert (emulated == np.float32(1.0) * np.float32(1.0 / factor)).all()


def test_the_gate_fails_with_numbers_for_a_broken_model(tmp_path):
    path = ROOT / "samples/models/face/model.onnx"
    model, card = onnx.load(str(path)), read_card(path)
    broken = onnx.load(str(path))
    for init in broken.graph.initializer:
        if init.dims and len(init.dims) == 4:
            array = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(array * np.float32(1.3) + np.float32(0.01), init.name))
            break
    crops = np.random.default_rng(0).normal(size=(40, 3, 32, 32)).astype(np.float32)
    report = measure(model, broken, crops, card, "fp16")
    assert not report.passed and "cosine" in report.summary() and "FAILED" in report.summary()


def test_rank1_agreement_counts_near_ties_as_agreement():
    # rows 1 and 2 are near-twins of row 0; the candidate moves twin 2 ahead of twin 1
    reference = np.array([[1.0, 0.0], [0.999, 0.045], [0.998, 0.06], [-1.0, 0.0]])
    candidate = reference.copy()
    candidate[2] = [0.9995, 0.03]
    assert rank1_agreement(reference, reference) == 1.0
    assert rank1_agreement(reference, candidate) == 1.0  # which twin comes first is noise
    assert rank1_agreement(reference, candidate, tie=0.0) < 1.0
    moved = reference.copy()
    moved[3] = [1.0, -0.001]  # the far row lands on row 0: a real retrieval change
    assert rank1_agreement(reference, moved) < 1.0


def test_bad_calibration_input(tmp_path):
    path = ROOT / "samples/models/face/model.onnx"
    with pytest.raises(InputError, match="not found"):
        load_crops(tmp_path / "missing", read_card(path).input)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(InputError, match="holds no images"):
        load_crops(tmp_path / "empty", read_card(path).input)
    with pytest.raises(ExportError, match="needs calibration crops"):
        convert(path, "int8", None)


def test_fp16_without_calib_gates_on_synthetic_crops_and_says_so(tmp_path):
    """FP16 needs no calibration: the bundled face student converts without --calib, gated on face crops
    rendered from a held-out world, and the engine's sidecar records that."""
    import json

    face = "samples/models/face/model.onnx"
    converted = convert(face, "fp16")
    assert converted.report.passed and "rendered from the synthetic world" in converted.notes
    trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx-cu12 builds engines without a GPU")
    from edgereid.exporting.engine import build_engine

    result = build_engine(face, tmp_path / "face16.engine", precision="fp16", flavour="tensorrt_rtx",
                          compute_capability="8.6")
    sidecar = json.loads(result.sidecar.read_text())
    assert "rendered from the synthetic world" in sidecar["precision_notes"] and sidecar["gate"]["passed"]
    assert sidecar["key"]["trt_version"] == trt.__version__
    with pytest.raises(ExportError, match="needs --calib"):
        build_engine(face, tmp_path / "face8.engine", precision="int8", flavour="tensorrt_rtx", compute_capability="8.6")
