"""`edgereid triton-repo`: configs that parse with Triton's model-config protobuf, an ensemble whose tensors connect,
and the Python-backend preprocessing against the NumPy reference."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="tritonclient ships Triton's model-config protobuf")
from google.protobuf import json_format, text_format  # noqa: E402

from edgereid.card import read_card  # noqa: E402
from edgereid.cli import main  # noqa: E402
from edgereid.ops.geometry import plan_crops, validate_boxes  # noqa: E402
from edgereid.ops.reference import preprocess_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = [ROOT / "samples" / "models" / task / "model.onnx" for task in ("reid", "keypoints", "face")]


def _configs(repo: Path) -> dict:
    configs = {}
    for path in repo.glob("*/config.pbtxt"):
        config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        assert config.name == path.parent.name
        configs[config.name] = config
    return configs


def test_the_repository_of_the_bundled_models_parses_and_connects(tmp_path):
    assert main(["triton-repo", *sum((["--model", str(m)] for m in MODELS), []), "--out", str(tmp_path)]) == 0
    configs = _configs(tmp_path)
    assert len(configs) == 9
    for path in MODELS:
        card = read_card(path)
        model = configs[card.name]
        assert model.backend == "onnxruntime" and model.max_batch_size == 32
        assert list(model.input[0].dims) == list(card.input.batch_shape(None)[1:])
        assert model.dynamic_batching.max_queue_delay_microseconds > 0
        assert (tmp_path / card.name / "1" / "model.onnx").is_file()
        ensemble = configs[f"{card.name}_ensemble"]
        available = {t.name for t in ensemble.input}
        for step in ensemble.ensemble_scheduling.step:
            target = configs[step.model_name]
            assert set(step.input_map) <= {t.name for t in target.input}
            assert set(step.input_map.values()) <= available, "a step reads a tensor nothing produced"
            assert set(step.output_map) <= {t.name for t in target.output}
            available |= set(step.output_map.values())
        assert {t.name for t in ensemble.output} <= available


def test_the_python_backend_preprocessing_matches_the_numpy_reference(tmp_path, frames):
    from edgereid.serving.repository import write_model_repository

    card = read_card(MODELS[0])
    write_model_repository([MODELS[0]], tmp_path)
    spec = importlib.util.spec_from_file_location("preprocess_model", tmp_path / f"{card.name}_preprocess/1/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = text_format.Parse((tmp_path / f"{card.name}_preprocess/config.pbtxt").read_text(),
                               model_config_pb2.ModelConfig())
    triton_model = module.TritonPythonModel()
    triton_model.initialize({"model_config": json_format.MessageToJson(config, preserving_proto_field_name=True)})
    assert triton_model.card.embedding_space() == card.embedding_space()
    boxes = np.array([[10.2, 20, 100, 220], [200, 100, 330, 260], [-5, 5, 30, 15]], np.float32)
    crops = module.crops_for(frames[0], boxes, triton_model.card)
    clipped = validate_boxes(boxes, frames[0].shape)
    reference = preprocess_reference([frames[0]], plan_crops(np.zeros(3, np.int64), clipped, card.input), card.input)
    error = np.abs(crops - reference) * np.array(card.input.std, np.float32)[None, :, None, None]
    assert crops.shape == (3, 3, card.input.height, card.input.width) and error.max() <= 1.0
