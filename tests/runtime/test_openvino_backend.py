"""The OpenVINO backend against ONNX Runtime on the bundled students, its cache, precision and errors, and the
BF16 gate that lets it run a model in BF16 by default. Real OpenVINO on this CPU (no mocks)."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ov = pytest.importorskip("openvino", reason="the OpenVINO backend needs the openvino extra")

from edgereid.card import BF16_GATE_METADATA_KEY  # noqa: E402
from edgereid.errors import BackendError, ConfigError, InputError, MissingDependencyError  # noqa: E402
from edgereid.pipeline.config import PipelineConfig  # noqa: E402
from edgereid.runtime.backends import load_backend  # noqa: E402
from edgereid.runtime.backends.openvino import OpenVinoBackend  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = {task: ROOT / "samples" / "models" / task / "model.onnx" for task in ("reid", "keypoints", "face")}
HAS_BF16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _batch(card, n=6, seed=0):
    spec = card.input
    return np.random.default_rng(seed).standard_normal((n, 3, spec.height, spec.width)).astype(np.float32)


def _unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("task", sorted(MODELS))
def test_f32_outputs_match_onnx_runtime(task, tmp_path):
    with load_backend(MODELS[task]) as ort_backend, \
            OpenVinoBackend(MODELS[task], precision="f32", cache_dir=tmp_path) as ov_backend:
        assert ov_backend.card == ort_backend.card and ov_backend.isa["precision"] == "f32"
        batch = _batch(ort_backend.card)
        expected, got = ort_backend.infer(batch), ov_backend.infer(batch)
        assert set(got) == set(expected)
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-3, atol=2e-4)


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no native BF16")
def test_bf16_embeddings_stay_close_to_fp32_and_the_gate_makes_it_the_default(tmp_path):
    from edgereid.exporting.precision import convert, save_converted

    with load_backend(MODELS["reid"]) as reference, \
            OpenVinoBackend(MODELS["reid"], precision="bf16", cache_dir=tmp_path) as bf16:
        batch = _batch(reference.card, 16)
        ref, low = reference.infer(batch)["embedding"], bf16.infer(batch)["embedding"]
        cosine = (_unit(ref) * _unit(low)).sum(1)
        assert cosine.min() > 0.995 and not np.array_equal(ref, low)  # BF16 really ran, and stayed close
    converted = convert(MODELS["reid"], "bf16")
    assert converted.report.passed and converted.report.mean_cosine < 1.0
    assert {p.key: p.value for p in converted.model.metadata_props}[BF16_GATE_METADATA_KEY] == "passed"
    gated = save_converted(converted, tmp_path / "reid_bf16.onnx")
    with OpenVinoBackend(gated, cache_dir=tmp_path) as default, \
            OpenVinoBackend(MODELS["reid"], cache_dir=tmp_path) as ungated:
        assert default.isa["precision"] == "bf16" and ungated.isa["precision"] == "f32"


def test_compiled_models_are_cached_in_the_cache_folder_not_beside_the_model(tmp_path):
    model_dir, cache = tmp_path / "user_models", tmp_path / "cache"
    model_dir.mkdir()
    model = Path(shutil.copy(MODELS["face"], model_dir / "face.onnx"))
    OpenVinoBackend(model, cache_dir=cache).close()
    assert sorted(p.name for p in model_dir.iterdir()) == ["face.onnx"]
    blobs = list(cache.rglob("*.blob"))
    assert blobs, "OpenVINO wrote no compiled model into the cache folder"
    stamp = [b.stat().st_mtime_ns for b in blobs]
    with OpenVinoBackend(model, cache_dir=cache) as again:  # the second open reads the blob
        assert again.infer(_batch(again.card, 2))["embedding"].shape[0] == 2
    assert [b.stat().st_mtime_ns for b in blobs] == stamp and len(list(cache.rglob("*.blob"))) == len(blobs)


def test_the_default_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    from edgereid.runtime.backends.openvino import openvino_cache_dir

    monkeypatch.delenv("EDGEREID_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert openvino_cache_dir() == tmp_path / "xdg" / "edgereid" / "openvino"
    monkeypatch.setenv("EDGEREID_CACHE_DIR", str(tmp_path / "mine"))
    assert openvino_cache_dir() == tmp_path / "mine" / "openvino"


def test_bad_requests_are_refused_with_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(BackendError, match="unknown OpenVINO precision"):
        OpenVinoBackend(MODELS["reid"], precision="int4", cache_dir=tmp_path)
    with pytest.raises(BackendError, match="runs ONNX files"):
        load_backend(tmp_path / "m.engine", backend="openvino")
    with pytest.raises(BackendError, match="unknown backend"):
        load_backend(MODELS["reid"], backend="ncnn")
    with OpenVinoBackend(MODELS["reid"], cache_dir=tmp_path) as backend:
        with pytest.raises(InputError, match="wrong dtype"):
            backend.infer(_batch(backend.card).astype(np.float64))
        with pytest.raises(InputError, match="wrong shape"):
            backend.infer(np.zeros((2, 3, 8, 8), np.float32))
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the extra were not installed
    with pytest.raises(MissingDependencyError, match=r"edgereid\[openvino\]"):
        OpenVinoBackend(MODELS["reid"], cache_dir=tmp_path)


def test_pipeline_config_selects_openvino_and_checks_precision(frames, tmp_path, monkeypatch):
    import edgereid

    monkeypatch.setenv("EDGEREID_CACHE_DIR", str(tmp_path))
    boxes = np.array([[20, 20, 80, 200], [100, 30, 170, 220]], np.float64)
    results = {}
    for backend in ("auto", "openvino"):
        with edgereid.Pipeline({"reid_model": str(MODELS["reid"]), "backend": backend}) as pipeline:
            assert pipeline.models["reid_model"].backend.name == ("openvino" if backend == "openvino" else "onnxruntime")
            results[backend] = pipeline.process([frames[0]], [boxes], "cam0")[0].persons.embeddings
    np.testing.assert_allclose(results["openvino"], results["auto"], atol=1e-4)
    with pytest.raises(ConfigError, match="unknown backend"):
        PipelineConfig.load({"reid_model": "m.onnx", "backend": "ncnn"})
    with pytest.raises(ConfigError, match="OpenVINO's inference precision"):
        PipelineConfig.load({"reid_model": "m.onnx", "precision": "bf16"})
