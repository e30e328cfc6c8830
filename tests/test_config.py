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


def _yaml(tmp_path, text: str | bytes):
    path = tmp_path / "c.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = _yaml(tmp_path, "\n".join(levels) + "\nreid_model: m.onnx\n")
    assert path.stat().st_size < 1000
    with pytest.raises(ConfigError, match="expands to too many values") as info:
        load_yaml(path)
    assert len(str(info.value)) < 500
    with pytest.raises(ConfigError, match="too many values"):
        load_yaml(_yaml(tmp_path, "a: &a [*a]\n"))  # a recursive alias expands forever


@pytest.mark.parametrize("text, message", [
    ("reid_model: a.onnx\nreid_model: b.onnx\n", "appears twice"),
    (b"reid_model: \xff\xfe.onnx\n", "not UTF-8"),
    ("reid_model: m.onnx\nmax_wait_ms: .nan\n", "finite"),
    ("reid_model: m.onnx\nmax_wait_ms: .inf\n", "finite"),
    ("reid_model: m.onnx\nmax_batch: -4\n", "out of range"),
    ("reid_model: m.onnx\nmax_batch: 1000000000\n", "out of range"),
    ("reid_model: m.onnx\nthreads: 0\n", "out of range"),
    ("reid_model: m.onnx\nmin_face_size: -1\n", "out of range"),
    ("reid_model: m.onnx\nqueue_megabytes: 0\n", "out of range"),
])
def test_bad_pipeline_configs_are_typed_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.load(_yaml(tmp_path, text))


def test_camera_ids_stay_as_written_and_huge_files_are_refused(tmp_path):
    config = PipelineConfig.load(_yaml(tmp_path, "reid_model: m.onnx\ncameras:\n  010: {modality: ir}\n  7: {}\n"))
    assert sorted(config.cameras) == ["010", "7"]
    big = _yaml(tmp_path, "reid_model: m.onnx\n" + "#" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="too large"):
        load_yaml(big)


def test_ranges_hold_for_configs_built_in_code():
    with pytest.raises(ConfigError, match="'max_batch' is out of range"):
        PipelineConfig(reid_model="m.onnx", max_batch=0)


@pytest.mark.parametrize("override", [{"ids_per_batch": -2}, {"lora_rank": -1}, {"optim.threads": 0},
                                      {"batch_size": 0}, {"tau": float("inf")}])
def test_run_config_numbers_have_ranges(override):
    from edgereid.methods.runs import load_run_config

    with pytest.raises(ConfigError):
        load_run_config("samples/configs/dcac_world.yaml", override, "train")
