import pytest

from edgereid.config import build, load_yaml
from edgereid.errors import ConfigError
from edgereid.pipeline import CameraConfig, PipelineConfig


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="unknown key 'max_batc'") as info:
        PipelineConfig.load({"reid_model": "m.onnx", "max_batc": 8})
    assert "did you mean 'max_batch'" in str(info.value)


def test_nested_sections_are_strict_too(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("reid_model: m.onnx\ncameras:\n  front: {modality: ir}\n  back: {modalty: rgb}\n")
    with pytest.raises(ConfigError, match="cameras.back"):
        PipelineConfig.load(path)
    path.write_text("reid_model: m.onnx\nmax_wait_ms: 5\ncameras:\n  front: {modality: ir}\n")
    config = PipelineConfig.load(path)
    assert config.cameras == {"front": CameraConfig("ir")} and config.max_wait_ms == 5.0


def test_types_and_values_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="wrong type"):
        PipelineConfig.load({"reid_model": "m.onnx", "max_batch": "eight"})
    with pytest.raises(ConfigError, match="drop_policy"):
        PipelineConfig.load({"reid_model": "m.onnx", "drop_policy": "newest"})
    with pytest.raises(ConfigError, match="no model"):
        PipelineConfig.load({})
    with pytest.raises(ConfigError, match="modality"):
        build(CameraConfig, {"modality": "thermal"})


def test_yaml_errors_say_which_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(bad)
