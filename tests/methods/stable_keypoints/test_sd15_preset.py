"""The Stable Diffusion 1.5 preset on a tiny random model with SD1.5's block layout (the same diffusers classes,
four down and four up blocks, two layers per block, a VAE that downsamples 8x): its layers exist, 512 px
crops are stretched square, and token learning runs end to end."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from edgereid.cli import main  # noqa: E402
from edgereid.diffusion.ldm import load_ldm  # noqa: E402
from edgereid.methods.stable_keypoints.attention import cross_attention_layers  # noqa: E402
from edgereid.methods.stable_keypoints.learning import StableKeypointsConfig  # noqa: E402

PRESET = "samples/configs/stable_keypoints_sd15.yaml"


@pytest.fixture(scope="module")
def tiny_sd15(tmp_path_factory):
    """A folder in Stable Diffusion 1.5's layout (no edgereid.json: SD's 512 px), tiny random weights."""
    root = tmp_path_factory.mktemp("sd15") / "stable-diffusion-v1-5"
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=64, block_out_channels=(8, 8, 16, 16), layers_per_block=2, norm_num_groups=4,
        cross_attention_dim=16, attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
    vae = diffusers.AutoencoderKL(block_out_channels=(4, 4, 8, 8), norm_num_groups=4, latent_channels=4,
                                  down_block_types=("DownEncoderBlock2D",) * 4,
                                  up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215)
    unet.save_pretrained(root / "unet", safe_serialization=True)
    vae.save_pretrained(root / "vae", safe_serialization=True)
    return root


def test_sd15_preset_layers_exist_in_sd15s_block_layout(tiny_sd15):
    config = StableKeypointsConfig.load(PRESET, {"ldm": str(tiny_sd15)})
    ldm = load_ldm(tiny_sd15)
    assert ldm.image_hw == (512, 512) and ldm.resize == "stretch"
    assert set(config.layers) <= set(cross_attention_layers(ldm.unet))
    assert (config.num_tokens, config.lr, config.steps, config.batch_size, config.map_hw) == (500, 5e-3, 500, 4,
                                                                                              (128, 128))


def test_sd15_preset_learns_tokens_on_stretched_crops(tiny_sd15, tmp_path):
    crops = tmp_path / "crops"
    crops.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # tall person-like crops: stretched to 512x512, no padding bars
        cv2.imwrite(str(crops / f"{i}.png"), rng.integers(0, 256, (96, 48, 3), dtype=np.uint8))
    out = tmp_path / "teacher"
    assert main(["keypoints", "learn", "--config", PRESET, "--set", f"ldm={tiny_sd15}", "--set", f"crops={crops}",
                 "--set", f"out={out}", "--set", "num_tokens=8", "--set", "candidates=4", "--set", "top_k=2",
                 "--set", "steps=1", "--set", "batch_size=1", "--set", "num_indices=2", "--set", "map_hw=[16, 16]",
                 "--set", "threads=1"]) == 0
    from safetensors import safe_open

    with safe_open(str(out / "teacher.safetensors"), framework="pt") as handle:
        meta = handle.metadata()
        assert handle.get_tensor("embedding").shape == (8, 16)
    assert json.loads(meta["image_hw"]) == [512, 512] and meta["resize"] == "stretch"
    assert float(meta["points_in_padding"]) == 0.0
