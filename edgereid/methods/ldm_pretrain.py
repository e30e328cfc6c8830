"""``edgereid diffusion pretrain``: the small text-conditioned latent diffusion model of the synthetic world.

The teachers that read a pretrained diffusion model (StableKeypoints, DCAC) need one whose UNet has
learnt what people look like. Stable Diffusion 1.5 cannot be downloaded or run at this machine's scale,
so this trains the same ``diffusers`` classes (``AutoencoderKL`` + ``UNet2DConditionModel``, DDPM
``scaled_linear`` schedule, epsilon prediction) on unlabeled person crops of the world, conditioned on
each identity's attribute caption through :class:`~edgereid.diffusion.text.WordTextEncoder`, in two
stages as Stable Diffusion was: the VAE (reconstruction + a small KL term), then the UNet and text
encoder on the frozen VAE's latents (captions dropped 10% of the time, the unconditional context).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from edgereid.config import build, load_yaml, apply_overrides
from edgereid.data.synthetic import WorldSpec
from edgereid.data.scene_crops import scene_crops
from edgereid.diffusion.ldm import SD_SCHEDULE, LatentDiffusion, diffusion_spec, import_diffusers, save_ldm
from edgereid.methods.batches import flip_half, shuffled_batches
from edgereid.methods.trainer import OptimConfig, fit, plot_history
from edgereid.ops.geometry import mirror_placement
from edgereid.ops.preprocess import normalise_batch


@dataclass(frozen=True)
class VaeConfig:
    """The autoencoder: ``len(channels) - 1`` halvings from image to latent."""

    channels: tuple[int, ...] = (32, 64, 64)
    latent_channels: int = 4
    kl_weight: float = 1e-6
    # latents are multiplied by this before the UNet; 0 = 1 / their measured standard deviation (the
    # latent diffusion recipe, so the noise schedule meets unit-variance latents)
    scaling_factor: float = 0.0
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=2, lr=1e-3, weight_decay=0.0))


@dataclass(frozen=True)
class UnetConfig:
    """The denoiser: cross-attention in every block but the deepest, as in Stable Diffusion."""

    channels: tuple[int, ...] = (32, 64, 64)
    context_dim: int = 64
    attention_head_dim: int = 8
    caption_dropout: float = 0.1
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=6, lr=1e-3, weight_decay=0.0))


@dataclass(frozen=True)
class PretrainConfig:
    out: str
    image_hw: tuple[int, int] = (64, 64)
    resize: str = "stretch"  # crops stretched to image_hw (square, no bars: what Stable Diffusion saw) or letterbox
    data: WorldSpec = field(default_factory=lambda: WorldSpec(seed=120, frames_per_camera=120))
    vae: VaeConfig = field(default_factory=VaeConfig)
    unet: UnetConfig = field(default_factory=UnetConfig)
    batch_size: int = 16
    samples: bool = True
    # a diffusion folder this run continues from: its VAE and latent scale are kept (no VAE stage) and its UNet
    # and text encoder train further; "" trains everything from scratch
    init: str = ""

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "PretrainConfig":
        return build(cls, apply_overrides(load_yaml(path), overrides), str(path))


def build_ldm(config: PretrainConfig, captions: list[str]) -> LatentDiffusion:
    """Randomly initialised VAE, UNet and text encoder of the configured sizes."""
    diffusers = import_diffusers()
    from edgereid.diffusion.text import WordTextEncoder, build_vocabulary

    groups = min(16, min(config.vae.channels + config.unet.channels))
    vae_blocks = len(config.vae.channels)
    vae = diffusers.AutoencoderKL(
        block_out_channels=config.vae.channels, down_block_types=("DownEncoderBlock2D",) * vae_blocks,
        up_block_types=("UpDecoderBlock2D",) * vae_blocks, layers_per_block=1,
        latent_channels=config.vae.latent_channels, norm_num_groups=groups, mid_block_add_attention=False)
    levels = len(config.unet.channels)
    factor = 2 ** (vae_blocks - 1)
    unet = diffusers.UNet2DConditionModel(
        sample_size=(config.image_hw[0] // factor, config.image_hw[1] // factor),
        in_channels=config.vae.latent_channels, out_channels=config.vae.latent_channels,
        block_out_channels=config.unet.channels, layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1),
        cross_attention_dim=config.unet.context_dim, attention_head_dim=config.unet.attention_head_dim,
        norm_num_groups=groups)
    text = WordTextEncoder(build_vocabulary(captions), dim=config.unet.context_dim)
    return LatentDiffusion(unet, vae, diffusers.DDPMScheduler(**SD_SCHEDULE), tuple(config.image_hw), text,
                           config.resize)


def _check_sizes(config: PretrainConfig) -> None:
    from edgereid.errors import ConfigError

    multiple = 2 ** (len(config.vae.channels) - 1) * 2 ** (len(config.unet.channels) - 1)
    if any(side % multiple for side in config.image_hw):
        raise ConfigError(f"image_hw {tuple(config.image_hw)} does not halve cleanly through the VAE and UNet",
                          expected=f"both sides multiples of {multiple}", fix="change image_hw or the channel lists")


# held-out people for the conditioning gate (a world seed no diffusion model is trained on)
GATE_WORLD = WorldSpec(seed=130, identities=60, cameras=2, frames_per_camera=40)


def conditioning_on_world(ldm: LatentDiffusion, count: int = 256, world: WorldSpec = GATE_WORLD):
    """:func:`edgereid.diffusion.conditioning.conditioning_errors` on ``count`` person crops of a held-out world,
    captioned with the world's attribute text."""
    from edgereid.diffusion.conditioning import conditioning_errors

    crops, _ = scene_crops(world, person_spec=diffusion_spec(ldm.image_hw, ldm.resize), progress=False)
    crops = crops.select(np.random.default_rng(0).permutation(len(crops))[:count])
    people = world.world()
    captions = [people.identity(int(pid)).text for pid in crops.pids]
    return conditioning_errors(ldm, crops.images, captions, crops.pids)


def _continued(config: PretrainConfig) -> LatentDiffusion:
    """The model of ``config.init``, checked to read crops as ``config`` says, with its denoiser trainable."""
    from edgereid.diffusion.ldm import load_ldm
    from edgereid.errors import ConfigError

    ldm = load_ldm(config.init)
    if tuple(ldm.image_hw) != tuple(config.image_hw) or ldm.resize != config.resize or ldm.text_encoder is None:
        raise ConfigError(f"init {config.init} does not read crops as this config does",
                          expected=f"image_hw {tuple(config.image_hw)}, resize {config.resize}, a text encoder",
                          got=f"image_hw {tuple(ldm.image_hw)}, resize {ldm.resize}")
    for module in (ldm.unet, ldm.text_encoder):
        module.requires_grad_(True)
    return ldm


def pretrain(config: PretrainConfig, config_dict: dict[str, Any]) -> Path:
    """Train the VAE, then the UNet + text encoder; write the folder, loss curves and a sample sheet."""
    _check_sizes(config)
    spec = diffusion_spec(config.image_hw, config.resize)
    crops, _ = scene_crops(config.data, person_spec=spec)
    world = config.data.world()
    captions = [world.identity(int(pid)).text for pid in crops.pids]
    torch.manual_seed(config.vae.optim.seed)
    ldm = _continued(config) if config.init else build_ldm(config, captions)
    rng = np.random.default_rng(config.vae.optim.seed)
    steps = len(crops) // config.batch_size

    def pixels(index: np.ndarray) -> torch.Tensor:
        images = crops.images[index]
        flip = flip_half(images, rng)
        placement = mirror_placement(crops.placement[index], spec.width, flip)
        return torch.from_numpy(normalise_batch(images, spec, placement=placement))

    def vae_step(index: np.ndarray) -> dict[str, torch.Tensor]:
        target = pixels(index)
        posterior = ldm.vae.encode(target).latent_dist
        recon = ldm.vae.decode(posterior.sample()).sample
        return {"reconstruction": F.l1_loss(recon, target), "kl": posterior.kl().mean() * config.vae.kl_weight}

    out = Path(config.out)
    history = {} if config.init else {
        "vae": fit(ldm.vae, ldm.vae.parameters(), lambda _: shuffled_batches(len(crops), config.batch_size, rng),
                   vae_step, config.vae.optim, steps, "diffusion: VAE")}
    ldm.vae.requires_grad_(False).eval()
    with torch.no_grad():
        if config.init:
            scale = ldm.latent_scale
        elif config.vae.scaling_factor > 0:
            scale = config.vae.scaling_factor
        else:
            sample = torch.from_numpy(normalise_batch(crops.images[:512], spec, placement=crops.placement[:512]))
            scale = 1.0 / float(ldm.vae.encode(sample).latent_dist.mean.std())
        ldm.vae.register_to_config(scaling_factor=scale)
        mirrored = mirror_placement(crops.placement, spec.width)
        latents = torch.cat([ldm.encode(torch.from_numpy(normalise_batch(
            crops.images[i:i + 64], spec, placement=crops.placement[i:i + 64]))) for i in range(0, len(crops), 64)])
        flipped = torch.cat([ldm.encode(torch.from_numpy(normalise_batch(
            crops.images[i:i + 64, :, ::-1], spec, placement=mirrored[i:i + 64]))) for i in range(0, len(crops), 64)])
    denoiser = torch.nn.ModuleDict({"unet": ldm.unet, "text": ldm.text_encoder})
    scheduler = ldm.scheduler

    def unet_step(index: np.ndarray) -> dict[str, torch.Tensor]:
        mirror = torch.from_numpy(rng.random(len(index)) < 0.5)
        clean = torch.where(mirror[:, None, None, None], flipped[index], latents[index])
        texts = ["" if rng.random() < config.unet.caption_dropout else captions[i] for i in index]
        noise = torch.randn_like(clean)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(index),))
        predicted = ldm.unet(scheduler.add_noise(clean, noise, t), t, ldm.text_encoder(texts)).sample
        return {"noise_mse": F.mse_loss(predicted, noise)}

    history["unet"] = fit(denoiser, denoiser.parameters(),
                          lambda _: shuffled_batches(len(crops), config.batch_size, rng),
                          unet_step, config.unet.optim, steps, "diffusion: UNet")
    ldm.freeze()
    gate = conditioning_on_world(ldm)
    print(gate.summary())
    info = {"trained_on": f"synthetic world seed {config.data.seed}: {len(crops)} person crops",
            "captions": "the world's attribute text", "config": config_dict,
            "conditioning": {**dataclasses.asdict(gate), "gain": gate.gain, "passed": gate.passed}}
    save_ldm(ldm, out, info)
    for stage, records in history.items():
        plot_history(records, out / f"loss_{stage}.png", f"diffusion pretraining: {stage}")
    if config.samples:
        from edgereid.diffusion.samples import sample_sheet

        sample_sheet(ldm, crops.images[:8], captions[:8], out / "samples.png", crops.placement[:8])
    return out
