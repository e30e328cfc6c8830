"""AIO end to end on tiny models: train (both stages) -> ONNX branches -> text queries on ONNX Runtime ->
RGB and IR students distilled into the teacher's space -> the cross-modal benchmark; and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from edgereid.cli import main
from edgereid.errors import CheckpointError, ConfigError

TINY = ["--set", "encoder={kind: tiny, width: 32, layers: 2, heads: 2}", "--set", "input_hw=[32, 16]",
        "--set", "tokenizer_channels=8", "--set", "stage1_epochs=2", "--set", "optim.epochs=6",
        "--set", "batch_size=8", "--set", "ids_per_batch=4"]
WORLD = ["--set", "data={seed: 3, identities: 8, cameras: 4, frames_per_camera: 8, pace: 4.0, people_per_frame: 4}",
         "--set", "train_cameras=[0, 1]"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("aio") / "teacher"
    assert main(["train", "--config", "samples/configs/aio_world.yaml", "--set", f"out={out}", *TINY, *WORLD]) == 0
    return out


def test_teacher_run_has_both_stages_and_every_branch(teacher):
    history = json.loads((teacher / "history.json").read_text())["history"]
    assert len(history) == 6 and {"id", "va", "fb"} <= set(history[0])
    for name in ("model.safetensors", "rgb.onnx", "ir.onnx", "sketch.onnx", "text.onnx", "tokenizer.json",
                 "text_encoder.json", "loss.png"):
        assert (teacher / name).is_file(), name


def test_checkpoint_round_trip_and_text_queries_match_torch(teacher, captions):
    from edgereid.methods.aio.captions import CaptionTokenizer
    from edgereid.methods.aio.checkpoint import load_aio
    from edgereid.methods.aio.query import TextQueryEncoder

    model = load_aio(teacher / "model.safetensors")
    tokens = CaptionTokenizer(model.encoder.tokenizer, model.encoder.special)
    with torch.no_grad():
        expected = model.embed(text=tokens.encode(captions)).numpy()
    got = TextQueryEncoder(teacher).encode(captions)
    assert got.shape == expected.shape
    assert (got * expected).sum(1).min() > 0.9999


def test_students_and_crossmodal_benchmark(teacher, tmp_path):
    students = {}
    for modality in ("rgb", "ir"):
        students[modality] = tmp_path / modality
        assert main(["distill", "--config", "samples/configs/aio_student.yaml", "--set", "student=test_reid",
                     "--set", "student_args={}", "--set", f"teacher={teacher / 'model.safetensors'}",
                     "--set", f"modality={modality}", "--set", f"out={students[modality]}", "--set", "optim.epochs=5",
                     "--set", "relation_weight=0", "--set", "id_weight=0",  # the regression term alone
                     "--set", "batch_size=8", "--set", "ids_per_batch=4", *WORLD]) == 0
        history = json.loads((students[modality] / "history.json").read_text())["history"]
        assert history[-1]["embed"] < history[0]["embed"]  # moving into the teacher's space of this modality
        assert (students[modality] / "teacher_agreement.json").is_file()
    report = tmp_path / "cross.json"
    assert main(["evaluate", "crossmodal", "--teacher", f"aio={teacher / 'model.safetensors'}",
                 "--student", f"student={students['rgb'] / 'model.onnx'},{students['ir'] / 'model.onnx'}",
                 "--branches", str(teacher), "--identities", "6", "--frames", "10", "--out", str(report),
                 "--sheet", str(tmp_path / "examples.png")]) == 0
    import cv2

    sheet = cv2.imread(str(tmp_path / "examples.png"))
    assert sheet is not None and sheet.shape[0] == 6 * (128 + 8)  # 3 caption rows + 3 IR rows
    results = json.loads(report.read_text())["results"]
    for label in ("aio", "student"):
        for kind in ("R->R", "I->R", "S->R", "T->R", "R+T->R"):
            assert 0 <= results[label][kind]["mAP"] <= 1 and results[label][kind]["queries"] > 0


def test_query_command_searches_a_gallery_with_text(teacher, captions, capsys, tmp_path, tiny_models):
    from edgereid.gallery import Gallery
    from edgereid.runtime.backends import load_backend

    rng = np.random.default_rng(0)
    for name, model in (("teacher", teacher / "rgb.onnx"), ("other", tiny_models["test_reid"]["onnx"])):
        gallery = Gallery(load_backend(model).card)  # both 32-d, but only the first in the teacher's space
        for person in ("alice", "bob", "carol"):
            gallery.enroll(person, rng.normal(size=(2, gallery.dim)))
        gallery.save(tmp_path / f"{name}.npz")
    assert main(["query", captions[0], "--text-encoder", str(teacher), "--gallery", str(tmp_path / "teacher.npz"),
                 "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "1." in out and "2." in out and "cosine" in out
    assert main(["query", captions[0], "--text-encoder", str(teacher), "--gallery", str(tmp_path / "other.npz")]) == 2
    assert "not enrolled in this AIO teacher's embedding space" in capsys.readouterr().err


def test_minilm_folder_checked_and_a_different_copy_refused(tmp_path):
    """A local BERT folder serves as the MiniLM encoder; a checkpoint refuses another copy of its weights."""
    from edgereid.methods.aio.checkpoint import load_aio, save_aio
    from edgereid.methods.aio.encoder import EncoderSpec, load_encoder, tiny_tokenizer
    from edgereid.methods.aio.model import AIOModel

    tiny = load_encoder(EncoderSpec(kind="tiny"))
    folder = tmp_path / "bert"
    tiny.bert.save_pretrained(str(folder))
    tiny_tokenizer().save(str(folder / "tokenizer.json"))
    model = AIOModel(load_encoder(EncoderSpec(kind="minilm", path=str(folder))), 3, (32, 16), 8)
    save_aio(model, tmp_path / "teacher.safetensors")
    assert load_aio(tmp_path / "teacher.safetensors").encoder.digest == model.encoder.digest
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    load_encoder(EncoderSpec(kind="tiny", seed=5)).bert.save_pretrained(str(other))
    with pytest.raises(CheckpointError, match="different copy"):
        load_aio(tmp_path / "teacher.safetensors", encoder_path=str(other))
    (other / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="not a MiniLM/BERT folder"):
        load_encoder(EncoderSpec(kind="minilm", path=str(other)))


def test_bad_configs_are_refused(tmp_path):
    from edgereid.methods.aio.checkpoint import load_aio
    from edgereid.methods.aio.training import AIOConfig
    from edgereid.methods.reid_distill import ReidDistillConfig

    with pytest.raises(ConfigError, match="unknown AIO encoder kind"):
        AIOConfig.load("samples/configs/aio_world.yaml", {"encoder": {"kind": "open_clip"}})
    with pytest.raises(ConfigError, match="stage1_epochs"):
        AIOConfig.load("samples/configs/aio_world.yaml", {"stage1_epochs": 99})
    with pytest.raises(ConfigError, match="unknown modality"):
        ReidDistillConfig.load("samples/configs/aio_student.yaml", {"modality": "thermal"})
    with pytest.raises(CheckpointError, match="not an AIO teacher"):
        load_aio(tmp_path / "missing.safetensors")


def test_prefetching_batches_on_the_loader_thread_gives_the_same_run(tmp_path):
    from safetensors.numpy import load_file

    runs = []
    for prefetch in (0, 2):
        out = tmp_path / f"prefetch{prefetch}"
        assert main(["train", "--config", "samples/configs/aio_world.yaml", "--set", f"out={out}", *TINY, *WORLD,
                     "--set", "stage1_epochs=1", "--set", "optim.epochs=2", "--set", "export=false",
                     "--set", f"optim.prefetch={prefetch}"]) == 0  # both stages: synthetic, then the IR camera's view
        runs.append((json.loads((out / "history.json").read_text())["history"], load_file(out / "model.safetensors")))
    (inline_history, inline_weights), (ahead_history, ahead_weights) = runs
    assert inline_history == ahead_history and len(inline_history) == 2
    assert set(inline_weights) == set(ahead_weights)
    assert all(np.array_equal(value, ahead_weights[name]) for name, value in inline_weights.items())
