"""Engine building on real TensorRT-RTX builder objects (it builds ahead of time without a GPU)."""

import json

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx-cu12 (the dev extra) builds engines without a GPU")
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from edgereid.errors import BackendError, ExportError  # noqa: E402
from edgereid.engine_file import BatchProfile, check_engine  # noqa: E402
from edgereid.exporting import engine as eng  # noqa: E402


def build(onnx_path, out, **kwargs):
    return eng.build_engine(onnx_path, out, flavour="tensorrt_rtx", compute_capability="8.6", **kwargs)


def test_fp32_build_writes_engine_sidecar_and_timing_cache(tiny_models, tmp_path):
    out = tmp_path / "face.engine"
    result = build(tiny_models["test_face"]["onnx"], out, batch=BatchProfile(1, 4, 16), cache_dir=tmp_path / "cache")
    assert out.stat().st_size > 1000 and not result.cached
    sidecar = json.loads((tmp_path / "face.engine.json").read_text())
    key = sidecar["key"]
    assert key["flavour"] == "tensorrt_rtx" and key["trt_version"] == trt.__version__
    assert key["compute_capability"] == "8.6" and key["precision"] == "fp32" and key["profile"] == "1:4:16"
    assert sidecar["card"]["task"] == "face" and sidecar["engine_bytes"] == out.stat().st_size
    assert "--batch 1:4:16" in sidecar["rebuild"]
    assert (tmp_path / "face.engine.timing").stat().st_size > 0
    again = build(tiny_models["test_face"]["onnx"], tmp_path / "copy.engine", batch=BatchProfile(1, 4, 16),
                  cache_dir=tmp_path / "cache")
    assert again.cached and (tmp_path / "copy.engine").read_bytes() == out.read_bytes()
    other = build(tiny_models["test_face"]["onnx"], tmp_path / "b8.engine", batch=BatchProfile(1, 8, 16),
                  cache_dir=tmp_path / "cache")
    assert not other.cached and other.key.digest() != result.key.digest()
    assert check_engine(out, trt.__version__, "tensorrt_rtx", "8.6")["key"] == key


def test_the_profile_spans_the_batch_on_every_input(tiny_models):
    logger = trt.Logger()
    builder = trt.Builder(logger)
    network, _ = eng.parse_onnx(trt, builder, logger, tiny_models["test_reid"]["onnx"].read_bytes(), "test_reid")
    config = builder.create_builder_config()
    profile = eng.add_profile(builder, network, config, BatchProfile.parse("2:8:32"))
    shapes = profile.get_shape(network.get_input(0).name)
    assert [tuple(s)[0] for s in shapes] == [2, 8, 32] and tuple(shapes[0])[1:] == tuple(network.get_input(0).shape)[1:]
    assert config.num_optimization_profiles == 1
    with pytest.raises(ExportError, match="MIN <= OPT <= MAX"):
        BatchProfile.parse("8:2:32")
    with pytest.raises(ExportError, match="MIN:OPT:MAX"):
        BatchProfile.parse("8")


def test_reduced_precision_builds_after_the_gate(tiny_models, tmp_path):
    import cv2

    folder = tmp_path / "crops"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (40, 40)))
    for precision in ("fp16", "int8"):
        result = build(tiny_models["test_face"]["onnx"], tmp_path / f"{precision}.engine", precision=precision,
                       calib=folder)
        assert result.gate["passed"] and result.key.precision == precision
    with pytest.raises(ExportError, match="needs --calib"):
        build(tiny_models["test_face"]["onnx"], tmp_path / "x.engine", precision="int8")


def test_a_failed_gate_leaves_the_previous_engine(tiny_models, tmp_path, monkeypatch):
    import cv2

    from edgereid.exporting import gate

    folder = tmp_path / "crops"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((40, 40, 3), i * 20, np.uint8))
    out = tmp_path / "face.engine"
    build(tiny_models["test_face"]["onnx"], out)
    before = out.read_bytes(), (tmp_path / "face.engine.json").read_text()
    monkeypatch.setitem(gate.GATES, "fp16", gate.GateThresholds(1.1, 1.1, 1.1, 0.0))  # unreachable
    with pytest.raises(ExportError, match="failed the fp16 accuracy gate"):
        build(tiny_models["test_face"]["onnx"], out, precision="fp16", calib=folder)
    assert (out.read_bytes(), (tmp_path / "face.engine.json").read_text()) == before


def test_an_op_tensorrt_cannot_parse_names_the_node(tmp_path):
    from edgereid.card import InputSpec, ModelCard, OutputSpec, write_card

    node = helper.make_node("EdgeMystery", ["input"], ["embedding"], name="mystery_node", domain="edgereid.test")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3, 8, 8])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgereid.test", 1)],
                              ir_version=8)
    path = tmp_path / "mystery.onnx"
    onnx.save(model, str(path))
    card = ModelCard(name="mystery", task="face", input=InputSpec(height=8, width=8),
                     outputs=(OutputSpec("embedding", "embedding", (4,)),), embedding_dim=4)
    write_card(path, card)
    with pytest.raises(ExportError, match=r"node 'mystery_node' \(op EdgeMystery\)"):
        build(path, tmp_path / "m.engine")
    assert not (tmp_path / "m.engine").exists()


def test_engines_from_elsewhere_or_damaged_are_refused(tiny_models, tmp_path):
    out = tmp_path / "reid.engine"
    build(tiny_models["test_reid"]["onnx"], out)
    with pytest.raises(BackendError, match="(?s)another TensorRT or GPU.*rebuild with: python export/build_engine.py"):
        check_engine(out, "10.3.0", "tensorrt", "8.7")
    with pytest.raises(BackendError, match="another TensorRT or GPU"):
        check_engine(out, trt.__version__, "tensorrt_rtx", "8.9")
    out.write_bytes(out.read_bytes()[:-100])
    with pytest.raises(BackendError, match="(?s)truncated or was altered.*rebuild with"):
        check_engine(out, trt.__version__, "tensorrt_rtx", "8.6")
    (tmp_path / "reid.engine.json").unlink()
    with pytest.raises(BackendError, match="has no sidecar"):
        check_engine(out, trt.__version__, "tensorrt_rtx", "8.6")
