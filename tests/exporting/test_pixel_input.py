"""uint8-input graphs: the card's normalisation folded into the graph (``edgereid convert --uint8-input``)."""

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import edgereid  # noqa: E402
from edgereid.card import read_card  # noqa: E402
from edgereid.cli.main import main  # noqa: E402
from edgereid.errors import ExportError  # noqa: E402
from edgereid.exporting.gate import run_model  # noqa: E402
from edgereid.exporting.pixel_input import PIXEL_NODE_PREFIX, fold_normalisation, to_pixels  # noqa: E402
from edgereid.exporting.precision import convert, save_converted, synthetic_gate_crops  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "samples" / "models"
REID = MODELS / "reid" / "model.onnx"


@pytest.fixture(scope="module")
def reid_crops():
    return synthetic_gate_crops(read_card(REID))[0]


def test_the_folded_graph_on_pixels_reproduces_the_original_on_normalised_crops(reid_crops):
    model, card = onnx.load(str(REID)), read_card(REID)
    folded, folded_card = fold_normalisation(model, card)
    assert (folded_card.input.dtype, folded_card.input.normalize) == ("uint8", "none")
    assert folded.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    pixels = to_pixels(reid_crops, card)
    assert pixels.dtype == np.uint8 and pixels.shape == reid_crops.shape
    reference, candidate = run_model(model, reid_crops), run_model(folded, pixels)
    for name in reference:
        np.testing.assert_allclose(candidate[name], reference[name], rtol=0, atol=1e-4 * np.abs(reference[name]).max())


@pytest.mark.parametrize("model, message", [("face", "face alignment"), ("reid", "letterbox")])
def test_cards_whose_padding_must_normalise_to_zero_are_refused(model, message):
    card = read_card(MODELS / model / "model.onnx")
    if model == "reid":
        import dataclasses

        card = card.replace(input=dataclasses.replace(card.input, resize="letterbox"))
    with pytest.raises(ExportError, match="cannot take uint8 pixels") as caught:
        fold_normalisation(onnx.load(str(MODELS / model / "model.onnx")), card)
    assert message in str(caught.value)


def test_int8_for_the_cpu_from_uint8_pixels_keeps_the_normalisation_in_float(reid_crops, tmp_path):
    converted = convert(REID, "int8", reid_crops, int8_target="cpu", uint8_input=True)
    assert converted.report.passed, converted.report.summary()
    assert "normalisation folded" in converted.notes
    graph = converted.model.graph
    inner = {node.output[0] for node in graph.node if node.name in (f"{PIXEL_NODE_PREFIX}cast", f"{PIXEL_NODE_PREFIX}sub")}
    # the cast feeds only the Sub and the Sub only the Mul: no quantize/dequantize pair inside the normalisation
    assert sorted(node.op_type for node in graph.node if set(node.input) & inner) == ["Mul", "Sub"]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    path = save_converted(converted, tmp_path / "int8_u8.onnx")
    assert read_card(path).input.normalize == "none"


def test_the_pipeline_feeds_raw_pixels_to_a_folded_model(frames, tmp_path):
    folded = save_converted(convert(REID, "fp32", uint8_input=True), tmp_path / "reid_u8.onnx")
    boxes = [np.array([[20, 20, 80, 200], [100, 30, 130, 90]], float)]
    with edgereid.Pipeline({"reid_model": str(REID)}) as plain, edgereid.Pipeline({"reid_model": str(folded)}) as raw:
        expected = plain.process(frames[:1], boxes, "cam0")[0].persons.embeddings
        got = raw.process(frames[:1], boxes, "cam0")[0].persons.embeddings
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_openvino_runs_the_folded_int8_graph_close_to_onnx_runtime(reid_crops, tmp_path):
    pytest.importorskip("openvino")
    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.backends.openvino import OpenVinoBackend

    path = save_converted(convert(REID, "int8", reid_crops, int8_target="cpu", uint8_input=True),
                          tmp_path / "int8_u8.onnx")
    pixels = to_pixels(reid_crops[:16], read_card(REID))
    with load_backend(path) as ort_backend, OpenVinoBackend(path, cache_dir=tmp_path) as ov_backend:
        name = ort_backend.card.output("embedding").name
        a, b = ort_backend.infer(pixels)[name], ov_backend.infer(pixels)[name]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.99, cosine


@pytest.mark.parametrize("extra, message", [([], "converts nothing by itself"),
                                            (["--uint8-input", "--precision", "fp16"], "for the CPU precisions")])
def test_convert_refuses_fp32_alone_and_fp16_with_uint8_input(tmp_path, capsys, extra, message):
    args = ["convert", "--model", str(REID), "--out", str(tmp_path / "x.onnx")]
    args += extra if "--precision" in extra else ["--precision", "fp32", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_bench_feeds_a_uint8_model_its_own_dtype_raw_and_end_to_end(tmp_path):
    from edgereid.eval.bench import run_bench
    from edgereid.runtime.backends import load_backend

    folded = save_converted(convert(REID, "fp32", uint8_input=True), tmp_path / "reid_u8.onnx")
    with load_backend(folded) as backend:
        rows = run_bench(backend, [4], e2e=True, warmup=1, iterations=2, min_seconds=0.0)
    assert [row.batch for row in rows] == [4] and rows[0].raw_crops_per_s > 0
