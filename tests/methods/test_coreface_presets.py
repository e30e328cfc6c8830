"""The paper-scale CoReFace presets (IResNet, SGD with step decay, per-view BN, a real face set) run end to end
on a tiny identity-folder set with a tiny model in their place."""

from __future__ import annotations

import json

import cv2
import pytest

torch = pytest.importorskip("torch")

from edgereid.card import InputSpec  # noqa: E402
from edgereid.cli import main  # noqa: E402
from edgereid.data.face_sets import align_faces, render_faces  # noqa: E402
from edgereid.methods.trainer import lr_factor  # noqa: E402
from edgereid.methods.run_config import OptimConfig  # noqa: E402

PRESETS = ("samples/configs/coreface_ms1mv2_iresnet100.yaml", "samples/configs/coreface_webface_iresnet50.yaml")


def test_the_official_step_decay_drops_at_the_stage_switch():
    optim = OptimConfig(epochs=24, optimizer="sgd", lr=0.1, schedule="multistep", milestones=(7, 13, 19),
                        warmup_epochs=0)
    factors = [lr_factor(epoch * 10, optim, 10) for epoch in (0, 6, 7, 12, 13, 19, 23)]
    assert factors == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.001, 0.001])


@pytest.mark.parametrize("preset", PRESETS)
def test_paper_scale_preset_trains_on_a_face_folder(preset, tmp_path):
    renders = render_faces(seed=9, identities=3, per_identity=4, progress=False)
    aligned = align_faces(renders.images, renders.landmarks, InputSpec(height=112, width=112))
    for i, (face, pid) in enumerate(zip(aligned, renders.pids)):
        folder = tmp_path / "faces" / str(pid)
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.jpg"), face)
    out = tmp_path / "run"
    assert main(["train", "--config", preset, "--set", "model=test_face_teacher", "--set",
                 f"data={{source: folder, path: {tmp_path / 'faces'}, workers: 2}}",
                 "--set", "batch_size=6", "--set", "optim.epochs=2", "--set", "optim.milestones=[1]",
                 "--set", "optim.mixed_precision=false", "--set", "optim.threads=1",
                 "--set", "dropout={stage2_epoch: 1, stage1: 0.4, stage2: 0.6}", "--set", "export=false",
                 "--set", f"out={out}"]) == 0
    history = json.loads((out / "history.json").read_text())["history"]
    assert "contrastive" in history[1] and "contrastive" not in history[0]  # stage 2 from epoch index 1
    assert all(torch.isfinite(torch.tensor(epoch["arcface"])) for epoch in history)
