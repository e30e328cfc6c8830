"""The committed configs parse with the strict loaders, and the bundled defaults carry their cards."""

from pathlib import Path

import pytest

from edgereid.card import read_card
from edgereid.methods.runs import load_run_config, verb_of
from edgereid.pipeline import PipelineConfig

ROOT = Path(__file__).resolve().parents[2]
RUN_CONFIGS = sorted(p for p in (ROOT / "samples" / "configs").glob("*.yaml") if p.name != "pipeline.yaml")
HELD_OUT_SEEDS = (600, 700, 710, 720, 730, 1000, 1001, 1002, 1003)  # calibration, benchmarks, demo


def _load_config(path: Path):
    """A committed config through the loader of the command it is written for."""
    import yaml

    method = yaml.safe_load(path.read_text()).get("method")
    if method is not None:
        return load_run_config(path, None, verb_of(method))
    if path.stem.startswith("ldm_"):
        from edgereid.methods.ldm_pretrain import PretrainConfig

        return PretrainConfig.load(path)
    from edgereid.methods.stable_keypoints.learning import StableKeypointsConfig

    return StableKeypointsConfig.load(path)


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.stem)
def test_run_configs_load(path):
    config = _load_config(path)
    if hasattr(config, "data"):
        assert config.data.seed not in HELD_OUT_SEEDS, "training seeds must not overlap the held-out ones"


def test_pipeline_config_loads_and_names_the_bundled_models():
    config = PipelineConfig.load(ROOT / "samples" / "configs" / "pipeline.yaml")
    for path, task in ((config.reid_model, "reid"), (config.keypoint_model, "keypoints"), (config.face_model, "face")):
        card = read_card(ROOT / path)
        assert card.task == task and len(card.provenance.checkpoint_sha256) == 64
        if task != "keypoints":
            assert card.accept_threshold is not None and card.accept_threshold.far == 1e-3
