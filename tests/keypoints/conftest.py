"""A tiny random latent diffusion model (same diffusers classes as Stable Diffusion) saved once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_LAYERS = ("up_blocks.1.attentions.0", "up_blocks.1.attentions.1")


@pytest.fixture(scope="session")
def tiny_ldm_path(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from edgereid.diffusion.ldm import save_ldm
    from edgereid.diffusion.pretrain import PretrainConfig, UnetConfig, VaeConfig, build_ldm

    torch.manual_seed(0)
    config = PretrainConfig(out="unused", image_hw=(32, 24), vae=VaeConfig(channels=(8, 16)),
                            unet=UnetConfig(channels=(16, 32), context_dim=16))
    ldm = build_ldm(config, ["a tall person in a red jacket", "a short person with a backpack"])
    return save_ldm(ldm, tmp_path_factory.mktemp("ldm") / "tiny_ldm")


@pytest.fixture(scope="session")
def tiny_ldm(tiny_ldm_path):
    from edgereid.diffusion.ldm import load_ldm

    return load_ldm(tiny_ldm_path).freeze()
