"""A picture of what a latent diffusion model learnt: crops, their VAE reconstructions, and new
images sampled from the same captions (DDIM, classifier-free guidance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgereid.diffusion.ldm import LatentDiffusion, diffusion_spec, import_diffusers
from edgereid.ops.preprocess import normalise_batch


def _to_bgr(pixels: torch.Tensor) -> np.ndarray:
    rgb = ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(rgb[..., ::-1])


@torch.no_grad()
def generate(ldm: LatentDiffusion, captions: list[str], steps: int = 25, guidance: float = 3.0,
             seed: int = 0) -> np.ndarray:
    """uint8 BGR images ``[N, H, W, 3]`` sampled for ``captions`` (needs the world's text encoder)."""
    scheduler = import_diffusers().DDIMScheduler.from_config(ldm.scheduler.config)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    factor = 2 ** (len(ldm.vae.config.block_out_channels) - 1)
    shape = (len(captions), ldm.unet.config.in_channels, ldm.image_hw[0] // factor, ldm.image_hw[1] // factor)
    latents = torch.randn(shape, generator=generator)
    context = torch.cat([ldm.text_encoder([""] * len(captions)), ldm.text_encoder(captions)])
    for t in scheduler.timesteps:
        uncond, cond = ldm.unet(torch.cat([latents, latents]), t, context).sample.chunk(2)
        latents = scheduler.step(uncond + guidance * (cond - uncond), t, latents).prev_sample
    return _to_bgr(ldm.vae.decode(latents / ldm.latent_scale).sample)


@torch.no_grad()
def sample_sheet(ldm: LatentDiffusion, crops_bgr: np.ndarray, captions: list[str], path: str | Path,
                 placement: np.ndarray | None = None) -> Path:
    """Three rows, one column per crop: the crop, its reconstruction, a sample from its caption (``placement``:
    the crops' content boxes, so their letterbox bars reach the VAE as the runtime gives them)."""
    from edgereid.plots import write_png

    spec = diffusion_spec(ldm.image_hw, ldm.resize)
    recon = _to_bgr(ldm.vae.decode(ldm.encode(torch.from_numpy(normalise_batch(crops_bgr, spec, placement=placement)))
                                   / ldm.latent_scale).sample)
    rows = [np.concatenate(list(row), axis=1) for row in (crops_bgr, recon, generate(ldm, captions))]
    sheet = np.concatenate(rows, axis=0)
    scale = max(1, 256 // sheet.shape[0])
    return write_png(path, np.repeat(np.repeat(sheet, scale, 0), scale, 1))
