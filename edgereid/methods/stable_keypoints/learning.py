"""StableKeypoints teacher (``edgereid keypoints learn``): ported from the official code
(``ubc-vision/StableKeypoints``; ``methods.md`` §3).

N learnable token embeddings replace the text context of a frozen latent diffusion model; one UNet pass
at an almost clean timestep per image gives cross-attention maps ``[N, H, W]`` (softmax over tokens,
:mod:`edgereid.methods.stable_keypoints.attention`). Training (Adam on the embeddings only) makes the maps of a
Gaussian-KL + furthest-point selected subset sharp (localisation loss to peak-1 Gaussians at their
argmax) and equivariant under random affine warps. The final K token indices are the ones selected
most often over many images; at inference the maps of those K tokens are averaged over test-time
affine augmentations (each warped back) and their argmax is the keypoint.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgereid.config import apply_overrides, build, load_yaml
from edgereid.diffusion.ldm import LatentDiffusion, diffusion_spec, load_ldm
from edgereid.errors import CheckpointError, ConfigError, InputError
from edgereid.methods.stable_keypoints import geometry
from edgereid.methods.stable_keypoints.attention import capture_token_maps, stack_maps

TEACHER_KIND = "edgereid.stable_keypoints_teacher"
# Stable Diffusion 1.5's up-path cross-attention modules at 16x16 and 32x32 latents (512 px images): the
# official "layers 0-3". The world model's config names its own.
SD15_LAYERS = ("up_blocks.1.attentions.0", "up_blocks.1.attentions.1", "up_blocks.1.attentions.2",
               "up_blocks.2.attentions.0")


@dataclass(frozen=True)
class AugmentConfig:
    """Random affine warps for the equivariance loss and test-time augmentation (official ranges)."""

    degrees: float = 15.0
    scale: tuple[float, float] = (0.8, 1.0)
    translate: float = 0.25


@dataclass(frozen=True)
class StableKeypointsConfig:
    """Defaults are the official ones for Stable Diffusion 1.5 (``samples/configs/stable_keypoints_sd15.yaml``
    spells them out); the world model's config sets its own layers, map size, tokens, lr and steps.
    ``device``: ``auto`` (this process's GPU, else the CPU) or a torch device name; ``mixed_precision``: BF16
    autocast for the frozen VAE and UNet."""

    ldm: str
    crops: str
    out: str
    num_tokens: int = 500
    top_k: int = 10
    candidates: int = 25
    sigma: float = 2.0
    layers: tuple[str, ...] = SD15_LAYERS
    map_hw: tuple[int, int] = (128, 128)
    timestep: int = 1
    localisation_weight: float = 100.0
    equivariance_weight: float = 1000.0
    lr: float = 5e-3
    steps: int = 500
    batch_size: int = 4
    num_indices: int = 100
    tta_views: int = 10
    max_crops: int = 2000
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    threads: int = 2
    device: str = "auto"
    mixed_precision: bool = False

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "StableKeypointsConfig":
        config = build(cls, apply_overrides(load_yaml(path), overrides), str(path))
        if not config.top_k <= config.candidates <= config.num_tokens:
            raise ConfigError(f"{path}: need top_k <= candidates <= num_tokens",
                              got=f"{config.top_k}, {config.candidates}, {config.num_tokens}")
        return config


def resolve_device(name: str) -> torch.device:
    """``auto``: this process's GPU when there is one (``methods.distributed.device``), else the CPU; otherwise
    the torch device named (``cpu``, ``cuda``, ``cuda:1``)."""
    from edgereid.methods import distributed

    if name == "auto":
        return distributed.device()
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU", fix="set device: auto or cpu")
    return device


class TokenMaps:
    """Token embeddings over a frozen latent diffusion model: images to ``[B, N, H, W]`` maps.

    The diffusion model is moved to ``device`` (its weights there, the noise drawn by a generator there);
    pixels are moved to it on each call and the maps come back there, in float32. ``mixed_precision`` runs the
    VAE and UNet under BF16 autocast (on CUDA and on a CPU: BF16 needs no gradient scaler for the embedding's
    gradients, which FP16 would); the maps are recomputed in float32 either way."""

    def __init__(self, ldm: LatentDiffusion, embedding: torch.Tensor, layers: tuple[str, ...],
                 map_hw: tuple[int, int], timestep: int, seed: int = 0, device: torch.device | None = None,
                 mixed_precision: bool = False) -> None:
        if embedding.shape[-1] != ldm.context_dim:
            raise CheckpointError("token embedding width does not match the UNet's context",
                                  expected=f"{ldm.context_dim}", got=f"{embedding.shape[-1]}",
                                  fix="use the diffusion model the tokens were learnt with")
        self.device = torch.device("cpu") if device is None else device
        self.ldm = ldm.freeze()
        self.ldm.unet.to(self.device)
        self.ldm.vae.to(self.device)
        self.embedding = embedding
        self.layers = tuple(layers)
        self.map_hw = tuple(map_hw)
        self.timestep = int(timestep)
        self.mixed_precision = mixed_precision
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.mixed_precision)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """Maps of every token for images in [-1, 1] ``[B, 3, H, W]`` (RGB); differentiable in the tokens."""
        pixels = pixels.to(self.device)
        with torch.no_grad(), self._autocast():
            latents = self.ldm.encode(pixels).float()
            noise = torch.randn(latents.shape, generator=self.generator, device=self.device)
            t = torch.full((len(latents),), self.timestep, dtype=torch.long, device=self.device)
            noisy = self.ldm.scheduler.add_noise(latents, noise, t)
        context = self.embedding.expand(len(latents), *self.embedding.shape[-2:])
        with capture_token_maps(self.ldm.unet, self.layers, self.map_hw, tuple(latents.shape[-2:])) as store, \
                self._autocast():
            self.ldm.unet(noisy, t, context)
        return stack_maps([maps.float() for maps in store], self.map_hw)


def training_losses(token_maps: TokenMaps, pixels: torch.Tensor, config: StableKeypointsConfig,
                    generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Weighted localisation and equivariance losses of one batch, with the official selection rules: per
    image, the ``candidates`` sharpest tokens by Gaussian KL on the original image's maps, thinned to K by
    furthest-point sampling on the warped image's peaks; the localisation loss on the original image's maps."""
    aug = config.augment
    pixels = pixels.to(token_maps.device)
    theta = geometry.random_affine(len(pixels), tuple(pixels.shape[-2:]), generator, aug.degrees, aug.scale,
                                   aug.translate)
    both = token_maps(torch.cat([pixels, geometry.warp(pixels, theta)]))
    maps, warped_maps = both[:len(pixels)], both[len(pixels):]
    chosen = torch.stack([geometry.select_tokens(m.detach(), config.candidates, config.top_k, config.sigma,
                                                 fps_maps=w.detach()) for m, w in zip(maps, warped_maps)])
    pick = lambda stack: torch.gather(stack, 1, chosen[:, :, None, None].expand(-1, -1, *stack.shape[-2:]))
    loc = geometry.localisation_loss(pick(maps), config.sigma)
    eq = geometry.equivariance_loss(pick(maps), pick(warped_maps), theta)
    return {"localisation": loc * config.localisation_weight, "equivariance": eq * config.equivariance_weight}


def learn(config: StableKeypointsConfig, config_dict: dict[str, Any]) -> Path:
    """Optimise the token embeddings, choose the K indices, write the teacher file; returns its path."""
    from tqdm import tqdm

    from edgereid.data.crop_folder import read_images
    from edgereid.data.scene_crops import runtime_crops_uint8
    from edgereid.ops.geometry import plan_whole_images
    from edgereid.ops.preprocess import normalise_batch

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    ldm = load_ldm(config.ldm)
    spec = diffusion_spec(ldm.image_hw, ldm.resize)
    images = read_images(config.crops, config.max_crops)[1]
    plan = plan_whole_images(images, spec)
    crops = runtime_crops_uint8(spec, images, plan)  # uint8 in memory (512 px for SD1.5), normalised per batch
    del images
    if len(crops) < config.batch_size:
        raise InputError(f"{config.crops} holds {len(crops)} crops",
                         expected=f"at least batch_size={config.batch_size}", fix="add crops or lower batch_size")

    def pixels(index: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(normalise_batch(crops[index], spec, placement=plan.placement[index]))

    device = resolve_device(config.device)
    embedding = torch.nn.Parameter(torch.randn(1, config.num_tokens, ldm.context_dim).to(device))
    token_maps = TokenMaps(ldm, embedding, config.layers, config.map_hw, config.timestep, config.seed, device,
                           config.mixed_precision)
    optimizer = torch.optim.Adam([embedding], lr=config.lr)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    history: list[dict[str, float]] = []
    bar = tqdm(range(config.steps), desc="keypoints: learning tokens", unit="step", dynamic_ncols=True)
    for step in bar:
        terms = training_losses(token_maps, pixels(rng.choice(len(crops), config.batch_size, replace=False)), config,
                                generator)
        loss = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append({"step": step + 1, **{k: float(v.detach()) for k, v in terms.items()}})
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    embedding.requires_grad_(False)
    vote = rng.permutation(len(crops))[:config.num_indices]
    indices, peaks = choose_indices(token_maps, pixels(vote), config)
    in_padding = geometry.share_in_padding(peaks, plan.placement[vote])
    out = Path(config.out)
    path = save_teacher(out / "teacher.safetensors", embedding.detach()[0].cpu(), indices.cpu(), ldm, config,
                        config_dict, in_padding)
    _write_history(out, history)
    return path


@torch.no_grad()
def choose_indices(token_maps: TokenMaps, pixels: torch.Tensor,
                   config: StableKeypointsConfig) -> tuple[torch.Tensor, np.ndarray]:
    """The ``top_k`` token indices selected most often (Gaussian KL + FPS on each image's maps) over ``pixels``,
    and the peaks of those tokens on each image ``[N, K, 2]`` in input pixels (x, y), for the padding figure."""
    counts: Counter[int] = Counter()
    peaks = []
    for start in range(0, len(pixels), 16):
        maps = token_maps(pixels[start:start + 16])
        peaks.append(geometry.argmax_xy(maps).cpu())
        for image_maps in maps:
            counts.update(geometry.select_tokens(image_maps, config.candidates, config.top_k, config.sigma).tolist())
    indices = torch.tensor([index for index, _ in counts.most_common(config.top_k)], dtype=torch.long)
    scale = torch.tensor([pixels.shape[-1] / config.map_hw[1], pixels.shape[-2] / config.map_hw[0]])
    return indices, ((torch.cat(peaks)[:, indices].float() + 0.5) * scale - 0.5).numpy()


def save_teacher(path: Path, embedding: torch.Tensor, indices: torch.Tensor, ldm: LatentDiffusion,
                 config: StableKeypointsConfig, config_dict: dict[str, Any], in_padding: float) -> Path:
    """Embeddings + chosen indices as safetensors, with what is needed to rebuild the maps in the header and the
    share of the chosen tokens' peaks that fell in letterbox padding on the index-vote crops (0 for square
    stretched inputs, which have none)."""
    from safetensors.torch import save

    from edgereid.fileio import atomic_write_bytes

    metadata = {"edgereid.kind": TEACHER_KIND, "ldm": str(config.ldm), "layers": json.dumps(list(config.layers)),
                "map_hw": json.dumps(list(config.map_hw)), "timestep": str(config.timestep),
                "image_hw": json.dumps(list(ldm.image_hw)), "sigma": str(config.sigma),
                "augment": json.dumps(asdict(config.augment)), "tta_views": str(config.tta_views),
                "points_in_padding": f"{in_padding:.4f}", "resize": ldm.resize,
                "config": json.dumps(config_dict, default=str)}
    tensors = {"embedding": embedding.contiguous(), "indices": indices.contiguous()}
    return atomic_write_bytes(path, save(tensors, metadata=metadata))


def _write_history(out: Path, history: list[dict[str, float]]) -> None:
    from edgereid.fileio import atomic_write_text
    from edgereid.plots import line_plot

    atomic_write_text(out / "history.json", json.dumps(history))
    every = max(1, len(history) // 200)
    series = {name: ([h["step"] for h in history[::every]], [h[name] for h in history[::every]])
              for name in ("localisation", "equivariance")}
    line_plot(series, out / "loss.png", "StableKeypoints: token learning", "step", "weighted loss")
