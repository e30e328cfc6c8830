"""DCAC, its distilled student and the unseen-domain benchmark, end to end on tiny models."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from edgereid.cli import main  # noqa: E402

TINY_WORLD = ["--set", "data.identities=8", "--set", "data.cameras=3", "--set", "data.frames_per_camera=10",
              "--set", "train_cameras=[0, 1]", "--set", "batch_size=8", "--set", "ids_per_batch=4",
              "--set", "optim.epochs=1"]


def test_dcac_teacher_student_and_evaluation(tmp_path, tiny_ldm_path):
    teacher = tmp_path / "teacher"
    assert main(["train", "--config", "samples/configs/dcac_world.yaml", "--set", "model=test_reid",
                 "--set", f"ldm={tiny_ldm_path}", "--set", f"out={teacher}", "--set", "lora_rank=2", *TINY_WORLD]) == 0
    history = json.loads((teacher / "history.json").read_text())["history"]
    assert {"id", "pcl", "ldm"} <= set(history[0])
    student = tmp_path / "student"
    assert main(["distill", "--config", "samples/configs/dcac_student.yaml", "--set", "student=test_reid",
                 "--set", f"teacher={teacher / 'model.safetensors'}", "--set", f"out={student}", *TINY_WORLD]) == 0
    assert {"embed", "relation", "id"} <= set(json.loads((student / "history.json").read_text())["history"][0])
    agreement = json.loads((student / "teacher_agreement.json").read_text())
    assert agreement["mean_cosine_after"] > agreement["mean_cosine_before"]  # it moved into the teacher's space
    report = tmp_path / "dg.json"
    assert main(["evaluate", "reid", "--model", f"teacher={teacher / 'model.onnx'}",
                 "--model", f"student={student / 'model.onnx'}", "--identities", "6", "--cameras", "2",
                 "--frames", "12", "--out", str(report)]) == 0
    results = json.loads(report.read_text())["results"]
    assert set(results) == {"teacher", "student"} and all(0 <= r["mAP"] <= 1 for r in results.values())


def test_distill_refuses_a_student_of_another_embedding_size(tmp_path, tiny_models):
    from edgereid.errors import ConfigError
    from edgereid.methods.reid_distill import ReidDistillConfig, distill

    config = ReidDistillConfig.load("samples/configs/dcac_student.yaml",
                                    {"student": "test_reid", "student_args": {"embedding_dim": 16},
                                     "teacher": str(tiny_models["test_reid"]["checkpoint"]), "out": str(tmp_path)})
    with pytest.raises(ConfigError, match="embeddings differ"):
        distill(config, {})


def test_missing_folders_and_wrong_layouts_are_named(tmp_path):
    from edgereid.errors import CheckpointError, ConfigError, InputError
    from edgereid.methods.dcac import DCACConfig, train

    missing_ldm = DCACConfig.load("samples/configs/dcac_world.yaml",
                                  {"ldm": str(tmp_path / "no_sd"), "out": str(tmp_path)})
    with pytest.raises(CheckpointError, match="no_sd"):
        train(missing_ldm, {})
    with pytest.raises(ConfigError, match="init names no file"):
        DCACConfig.load("samples/configs/dcac_world.yaml", {"init": str(tmp_path / "imagenet.safetensors")})
    missing_data = DCACConfig.load("samples/configs/dcac_world.yaml", {"ldm_weight": 0, "out": str(tmp_path),
                                                                       "dataset": str(tmp_path / "no_market")})
    with pytest.raises(InputError, match="no_market"):
        train(missing_data, {})
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "0001_c1s1_000151_01.jpg").write_bytes(b"")
    wrong_layout = DCACConfig.load("samples/configs/dcac_world.yaml", {"ldm_weight": 0, "out": str(tmp_path),
                                                                       "dataset": str(tmp_path / "flat")})
    with pytest.raises(InputError, match="bounding_box_train"):
        train(wrong_layout, {})


def _run_record(out):
    from safetensors.numpy import load_file

    return json.loads((out / "history.json").read_text())["history"], load_file(out / "model.safetensors")


def test_prefetching_batches_on_the_loader_thread_gives_the_same_run(tmp_path, tiny_ldm_path):
    runs = {}
    for prefetch in (0, 3):
        out = tmp_path / f"prefetch{prefetch}"
        assert main(["train", "--config", "samples/configs/dcac_world.yaml", "--set", "model=test_reid",
                     "--set", f"ldm={tiny_ldm_path}", "--set", f"out={out}", "--set", "lora_rank=2",
                     "--set", "export=false", "--set", f"optim.prefetch={prefetch}", *TINY_WORLD[:-2],
                     "--set", "optim.epochs=2"]) == 0
        runs[prefetch] = _run_record(out)
    (inline_history, inline_weights), (ahead_history, ahead_weights) = runs[0], runs[3]
    assert inline_history == ahead_history and {"id", "pcl", "ldm"} <= set(inline_history[0])
    assert set(inline_weights) == set(ahead_weights)
    for name, value in inline_weights.items():
        assert (value == ahead_weights[name]).all(), name
