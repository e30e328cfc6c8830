import json
from pathlib import Path

import onnx
import pytest

from edgereid.card import OutputSpec, read_card
from edgereid.card_tools import format_inspect_report, inspect_model, parse_output_spec
from edgereid.cli import main
from edgereid.cli.main import GROUPS, HELP_ORDER
from edgereid.errors import EdgeReidError


def test_card_attach_makes_a_third_party_onnx_usable(tiny_models, tmp_path, capsys):
    model = onnx.load(str(tiny_models["test_face"]["onnx"]))
    del model.metadata_props[:]
    bare = tmp_path / "third_party.onnx"
    onnx.save(model, str(bare))
    assert main(["inspect", str(bare)]) == 2
    assert "edgereid card attach" in capsys.readouterr().err
    assert main(["card", "attach", str(bare), "--task", "face", "--height", "32", "--width", "32",
                 "--mean", "127.5", "127.5", "127.5", "--std", "128", "128", "128"]) == 0
    card = read_card(bare)
    assert (card.task, card.embedding_dim, card.input.mean) == ("face", 32, (127.5,) * 3)
    assert main(["card", "show", str(bare)]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["task"] == "face"


def test_card_attach_needs_declared_outputs_for_keypoints(tiny_models, tmp_path, capsys):
    assert main(["card", "attach", str(tiny_models["test_keypoints"]["onnx"]), "--task", "keypoints",
                 "--height", "64", "--width", "48", "--out", str(tmp_path / "k.onnx")]) == 2
    assert "--output NAME:KIND:DIMS" in capsys.readouterr().err
    assert main(["card", "attach", str(tiny_models["test_keypoints"]["onnx"]), "--task", "keypoints",
                 "--height", "64", "--width", "48", "--out", str(tmp_path / "k.onnx"), "--resize", "letterbox",
                 "--output", "heatmaps:heatmaps:17x16x12", "--output", "coords:coords:17x2",
                 "--output", "confidence:confidence:17"]) == 0
    assert read_card(tmp_path / "k.onnx").input.resize == "letterbox"


def test_export_random_model_and_inspect(tmp_path, capsys):
    out = tmp_path / "r.onnx"
    assert main(["export", "--model", "test_reid", "--out", str(out)]) == 0
    assert (tmp_path / "r.safetensors").is_file()
    assert main(["inspect", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "['batch', 3, 64, 32]" in printed and "task reid" in printed


def test_doctor_and_help(capsys):
    assert main(["doctor"]) == 0
    assert "onnxruntime providers" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "export" in capsys.readouterr().out


def test_parse_output_spec():
    assert parse_output_spec("heat:heatmaps:17x64x48") == OutputSpec("heat", "heatmaps", (17, 64, 48))
    with pytest.raises(EdgeReidError, match="bad --output 'emb:512'") as caught:
        parse_output_spec("emb:512")
    assert type(caught.value) is EdgeReidError and "NAME:KIND:DIMS" in str(caught.value)


def test_inspect_model_reports_the_card_and_the_input_shape():
    report = inspect_model(Path(__file__).resolve().parents[1] / "samples/models/reid/model.onnx")
    assert report["card"].name == "reid_mobilenet_w050_128x64"
    assert report["inputs"][0]["shape"] == ["batch", 3, 128, 64]
    text = format_inspect_report(report)
    assert "model reid_mobilenet_w050_128x64" in text and "['batch', 3, 128, 64]" in text


def test_every_verb_is_registered_once_in_the_help_order():
    listed = [name for _, names in HELP_ORDER for name in names]
    assert len(listed) == len(set(listed))
    assert {(group, name) for group, names in HELP_ORDER for name in names} == \
        {(group, name) for group in GROUPS for name in group.VERBS}


def test_json_outputs_of_inspect_doctor_and_calibrate(tmp_path, capsys):
    import json

    from edgereid.cli import main
    from edgereid.eval.calibrate import calibrate

    assert main(["inspect", "samples/models/reid/model.onnx", "--json", str(tmp_path / "i.json")]) == 0
    inspected = json.loads((tmp_path / "i.json").read_text())
    assert inspected["card"]["task"] == "reid" and inspected["inputs"][0]["shape"][1:] == [3, 128, 64]
    capsys.readouterr()
    assert main(["doctor", "--json", "-"]) == 0
    doctor = json.loads(capsys.readouterr().out.split("\n{\n", 1)[1].join(["{\n", ""]))
    assert doctor["components"]["numpy"]["version"] and "CPUExecutionProvider" in doctor["onnxruntime_providers"]
    args = {"far": 0.01, "seed": 600, "identities": 12, "frames": 8}
    assert main(["calibrate", "--model", "samples/models/face/model.onnx", "--far", "0.01", "--identities", "12",
                 "--frames", "8", "--dry-run", "--json", str(tmp_path / "c.json")]) == 0
    calibrated = json.loads((tmp_path / "c.json").read_text())
    direct = calibrate("samples/models/face/model.onnx", **args)
    assert calibrated["written"] is None and calibrated["threshold"] == direct.threshold.score
    assert (calibrated["tar"], calibrated["impostor_pairs"]) == (direct.tar, direct.impostor_pairs)
