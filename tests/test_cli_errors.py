"""Every command-line failure a user can cause exits 2 with what was expected, what came and what to do,
never a traceback: each verb against bad arguments, files and output paths."""

from __future__ import annotations

import pytest

from edgereid.cli import main

REID = "samples/models/reid/model.onnx"


@pytest.fixture
def bad(tmp_path):
    (tmp_path / "bad.onnx").write_text("not onnx")
    (tmp_path / "regular_file").write_text("x")
    return tmp_path


CASES = [
    ["inspect", "{bad}/bad.onnx"], ["inspect", "/nonexistent.onnx"], ["card", "show", "{bad}/bad.onnx"],
    ["card", "attach", "{bad}/bad.onnx", "--task", "reid", "--height", "64", "--width", "32"],
    ["card", "attach", REID, "--task", "reid", "--height", "999", "--width", "64", "--out", "{bad}/x.onnx"],
    ["card", "attach", REID, "--task", "reid", "--height", "0", "--width", "64"],
    ["convert", "--model", "/nonexistent.onnx", "--precision", "fp16", "--out", "{bad}/x.onnx"],
    ["calibrate", "--model", REID, "--far", "0"], ["calibrate", "--model", REID, "--far", "2"],
    ["calibrate", "--model", REID, "--far", "nan"],
    ["bench", "--model", REID, "--batch", "-1"], ["bench", "--model", REID, "--batch", "abc"],
    ["bench", "--model", REID, "--batch", "1,99999"], ["bench", "--model", "/nonexistent.onnx"],
    ["bench", "--model", REID, "--seconds", "inf"],
    ["demo", "--frames", "0", "--out", "{bad}/demo"], ["demo", "--identities", "-3", "--out", "{bad}/demo"],
    ["demo", "--reid", "/nonexistent.onnx", "--out", "{bad}/demo"],
    ["demo", "--max-batch", "100000", "--out", "{bad}/demo"], ["demo", "--cameras", "1", "--out", "{bad}/demo"],
    ["synth", "--out", "{bad}/regular_file/x", "--layout", "market1501", "--identities", "2", "--cameras", "2"],
    ["export", "--checkpoint", "/nonexistent.safetensors", "--out", "{bad}/x.onnx"],
    ["export", "--model", "no_such_model", "--out", "{bad}/x.onnx"],
    ["train", "--config", "/nonexistent.yaml"], ["train", "--config", "{bad}/bad.onnx"],
    ["train", "--config", "samples/configs/reid_supervised.yaml", "--set", "batch_size=-1", "--set", "out={bad}/run"],
    ["train", "--config", "samples/configs/reid_supervised.yaml", "--set", "optim.lr=nan", "--set", "out={bad}/run"],
    ["distill", "--config", "samples/configs/reid_supervised.yaml"],
    ["engine", "--onnx", "/nonexistent.onnx", "--out", "{bad}/x.engine"],
    ["engine", "--onnx", REID, "--out", "{bad}/x.engine", "--batch", "8:1:2"],
    ["query", "a person", "--text-encoder", "/nonexistent", "--gallery", "/nonexistent.npz"],
    ["evaluate", "reid", "--model", "x=/nonexistent.onnx", "--out", "{bad}/r.json"],
    ["evaluate", "faces", "--model", "nolabel", "--out", "{bad}/f"],
    ["keypoints", "readout", "--model", "/nonexistent.onnx", "--crops", "/nonexistent", "--out", "{bad}/k.onnx"],
    ["keypoints", "label", "--teacher", "/nonexistent", "--crops", "/nonexistent", "--out", "{bad}/l.npz"],
    ["diffusion", "pretrain", "--config", "/nonexistent.yaml"], ["doctor", "--bogus"], ["no-such-verb"],
]


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c)[:60] for c in CASES])
def test_user_errors_exit_2_with_what_to_do(argv, bad, capsys):
    argv = [part.format(bad=bad) for part in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error" in err and "Traceback" not in err
    if "usage:" not in err:  # edgereid's own errors say what to do
        assert "what to do" in err or "expected" in err, err


def test_an_output_under_a_regular_file_is_a_typed_error(bad, capsys):
    code = main(["synth", "--out", str(bad / "regular_file" / "x"), "--layout", "faces", "--identities", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write" in err and "regular_file" in err


def test_a_verb_without_its_optional_package_names_the_extra(monkeypatch, bad, capsys):
    import sys

    for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.") or m.startswith("edgereid.methods")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as on a runtime-only install
    code = main(["train", "--config", "samples/configs/reid_supervised.yaml", "--set", f"out={bad}/run"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'edgereid[train]'" in err and "Traceback" not in err
