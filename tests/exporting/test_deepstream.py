"""DeepStream configs from the cards of the three bundled models, checked against DeepStream 8.0's documented keys
and value types (gst-nvinfer, gst-nvdspreprocess, NvMultiObjectTracker ReID), and the std folding checked exact."""

import configparser
from pathlib import Path

import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")

from edgereid.card import read_card  # noqa: E402
from edgereid.cli import main  # noqa: E402
from edgereid.errors import ExportError  # noqa: E402
from edgereid.exporting.deepstream import write_deepstream_configs  # noqa: E402
from edgereid.ort_session import open_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = {task: ROOT / "samples" / "models" / task / "model.onnx" for task in ("reid", "keypoints", "face")}

# DeepStream 8.0 documentation (DS_plugin_gst-nvinfer, DS_plugin_gst-nvdspreprocess, DS_plugin_gst-nvtracker "Object
# Re-ID" table): key -> type. "int", "float", "bool" (0/1), "ints"/"floats" (';'-separated), "str", or a set of the
# allowed integers.
NVINFER = {"gpu-id": "int", "net-scale-factor": "float", "offsets": "floats", "model-color-format": {0, 1, 2},
           "onnx-file": "str", "model-engine-file": "str", "infer-dims": "ints", "network-input-order": {0, 1},
           "batch-size": "int", "network-mode": {0, 1, 2}, "network-type": {0, 1, 2, 3, 100},
           "output-tensor-meta": "bool", "process-mode": {1, 2}, "gie-unique-id": "int", "operate-on-gie-id": "int",
           "operate-on-class-ids": "ints", "maintain-aspect-ratio": "bool", "symmetric-padding": "bool",
           "scaling-filter": {0, 1, 2, 3, 4, 5, 6}, "input-tensor-from-meta": "bool", "classifier-threshold": "float"}
PREPROCESS = {
    "property": {"enable": "bool", "target-unique-ids": "ints", "operate-on-gie-id": "int", "process-on-frame": "bool",
                 "network-input-order": {0, 1, 2}, "network-input-shape": "ints", "processing-width": "int",
                 "processing-height": "int", "network-color-format": {0, 1, 2}, "tensor-data-type": {0, 1, 2, 3, 4, 5},
                 "tensor-name": "str", "scaling-buf-pool-size": "int", "tensor-buf-pool-size": "int",
                 "scaling-pool-memory-type": {0, 1, 2, 3, 4}, "scaling-pool-compute-hw": {0, 1, 2},
                 "scaling-filter": {0, 1, 2, 3, 4, 5, 6}, "maintain-aspect-ratio": "bool", "symmetric-padding": "bool",
                 "custom-lib-path": "str", "custom-tensor-preparation-function": "str"},
    "user-configs": {"pixel-normalization-factor": "float", "offsets": "floats"},
    "group-0": {"src-ids": "ints", "custom-input-transformation-function": "str", "process-on-all-objects": "bool",
                "operate-on-class-ids": "ints"}}
# the keys nvdspreprocess refuses to load without
PREPROCESS_REQUIRED = {"processing-width", "processing-height", "network-input-order", "network-input-shape",
                       "network-color-format", "tensor-data-type", "tensor-name", "custom-lib-path",
                       "custom-tensor-preparation-function", "scaling-filter", "scaling-pool-memory-type"}
TRACKER_REID = {"reidType": {0, 1, 2, 3}, "batchSize": int, "workspaceSize": int, "reidFeatureSize": int,
                "reidHistorySize": int, "inferDims": list, "networkMode": {0, 1, 2}, "inputOrder": {0, 1},
                "colorFormat": {0, 1}, "offsets": list, "netScaleFactor": float, "keepAspc": {0, 1},
                "addFeatureNormalization": {0, 1}, "onnxFile": str, "modelEngineFile": str}


def _check(value: str, kind, key: str) -> None:
    if isinstance(kind, set):
        assert int(value) in kind, (key, value)
    elif kind in ("int", "bool"):
        assert int(value) == float(value) and (kind == "int" or value in ("0", "1")), (key, value)
    elif kind == "float":
        float(value)
    elif kind in ("ints", "floats"):
        parts = value.split(";")
        assert all(parts), (key, value)
        [int(p) if kind == "ints" else float(p) for p in parts]
    else:
        assert value and "\n" not in value, (key, value)


def _read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in GKeyFile
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("task", sorted(MODELS))
def test_configs_of_the_bundled_models_use_deepstreams_keys_and_types(task, tmp_path):
    card = read_card(MODELS[task])
    files = write_deepstream_configs(MODELS[task], tmp_path, precision="fp16")
    nvinfer = _read(files.nvinfer)
    assert nvinfer.sections() == ["property"]
    for key, value in nvinfer["property"].items():
        assert key in NVINFER, f"{key} is not a documented nvinfer key"
        _check(value, NVINFER[key], key)
    prop = nvinfer["property"]
    assert [float(v) for v in prop["offsets"].split(";")] == pytest.approx(card.input.mean)
    assert prop["infer-dims"] == f"3;{card.input.height};{card.input.width}" and prop["network-mode"] == "2"
    assert prop["maintain-aspect-ratio"] == ("1" if card.input.resize == "letterbox" else "0")
    assert (tmp_path / prop["onnx-file"]).is_file()
    preprocess = _read(files.preprocess)
    assert PREPROCESS_REQUIRED <= set(preprocess["property"])
    for group, keys in PREPROCESS.items():
        for key, value in preprocess[group].items():
            assert key in keys, f"{key} is not a documented nvdspreprocess key in [{group}]"
            _check(value, keys[key], key)
    assert preprocess["property"]["network-input-shape"] == f"16;3;{card.input.height};{card.input.width}"
    if task == "reid":
        reid = yaml.safe_load(files.tracker_reid.read_text())["ReID"]
        assert set(reid) == set(TRACKER_REID)
        for key, kind in TRACKER_REID.items():
            assert reid[key] in kind if isinstance(kind, set) else isinstance(reid[key], kind), (key, reid[key])
        assert reid["networkMode"] == 1  # the tracker numbers FP16 1 (nvinfer: 2)
        assert reid["inferDims"] == [3, card.input.height, card.input.width]
        assert reid["reidFeatureSize"] == card.embedding_dim
    else:
        assert files.tracker_reid is None


def test_the_folded_std_is_exact(tmp_path):
    """nvinfer's one scale: the folded graph on (x - mean) gives the original's output on (x - mean) / std."""
    card = read_card(MODELS["reid"])
    files = write_deepstream_configs(MODELS["reid"], tmp_path)
    assert files.folded and read_card(files.onnx).input.std == (1.0, 1.0, 1.0)
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 3, card.input.height, card.input.width)).astype(np.float32)
    centred = pixels - np.array(card.input.mean, np.float32)[None, :, None, None]
    original = open_session(MODELS["reid"]).run(None, {"input": centred / np.array(card.input.std, np.float32)[
        None, :, None, None]})[0]
    folded = open_session(files.onnx).run(None, {"input": centred})[0]
    np.testing.assert_allclose(folded, original, atol=1e-5)


def test_cli_and_refusals(tmp_path, capsys):
    assert main(["deepstream", "--model", str(MODELS["face"]), "--out", str(tmp_path / "face"), "--precision", "int8",
                 "--class-ids", "0,2"]) == 0
    assert "nvinfer SGIE" in capsys.readouterr().out
    prop = _read(next((tmp_path / "face").glob("config_infer_secondary_*.txt")))["property"]
    assert prop["network-mode"] == "1" and prop["operate-on-class-ids"] == "0;2"
    with pytest.raises(ExportError, match="unknown precision"):
        write_deepstream_configs(MODELS["face"], tmp_path / "x", precision="int4")
