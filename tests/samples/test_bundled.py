"""The committed configs parse with the strict loaders, and the bundled defaults carry their cards."""

from pathlib import Path

import pytest

from edgereid.card import read_card
from edgereid.methods.supervised import TrainConfig
from edgereid.pipeline import PipelineConfig

ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIGS = sorted((ROOT / "samples" / "configs").glob("*_supervised.yaml"))


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_training_configs_load(path):
    config = TrainConfig.load(path)
    assert config.data.seed not in (1000, 1001, 1002, 1003), "training seeds must not overlap the demo's"


def test_pipeline_config_loads_and_names_the_bundled_models():
    config = PipelineConfig.load(ROOT / "samples" / "configs" / "pipeline.yaml")
    for path, task in ((config.reid_model, "reid"), (config.keypoint_model, "keypoints"), (config.face_model, "face")):
        card = read_card(ROOT / path)
        assert card.task == task and len(card.provenance.checkpoint_sha256) == 64
        if task != "keypoints":
            assert card.accept_threshold is not None and card.accept_threshold.far == 1e-3
