"""Loading, saving and using a latent diffusion model in Stable Diffusion's folder layout.

``unet/`` and ``vae/`` are ``diffusers`` folders (config JSON + safetensors weights); ``scheduler/`` holds
the noise schedule; ``text_encoder/`` is edgereid's word encoder (:mod:`edgereid.diffusion.text`) for
the world model, and absent or ignored for Stable Diffusion (whose CLIP text encoder neither
StableKeypoints nor DCAC calls: both learn their own context). ``edgereid.json`` records the image
size the model was trained at. Loading never executes or unpickles anything: weights must be
safetensors, and ``local_files_only`` keeps ``diffusers`` off the network.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgereid.card import InputSpec
from edgereid.errors import CheckpointError, require

INFO_FILE = "edgereid.json"
# Stable Diffusion's DDPM schedule: 1000 steps, beta "scaled_linear" from 0.00085 to 0.012.
SD_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
               "beta_schedule": "scaled_linear"}


def import_diffusers():
    """The ``diffusers`` module, or an error that says how to install it."""
    return require("diffusers", "teachers", "the diffusion teachers (StableKeypoints, DCAC)")


@dataclass
class LatentDiffusion:
    """UNet + VAE (+ the world's text encoder) and the numbers needed to feed them."""

    unet: nn.Module
    vae: nn.Module
    scheduler: object
    image_hw: tuple[int, int]
    text_encoder: nn.Module | None = None
    # how crops were fitted to image_hw in training: "stretch" (Stable Diffusion's square images, the world model
    # since issue 19) or "letterbox" (the first world model); readers should feed crops the same way
    resize: str = "stretch"

    @property
    def latent_scale(self) -> float:
        """Latents are multiplied by this before the UNet (0.18215 for Stable Diffusion)."""
        return float(self.vae.config.scaling_factor)

    @property
    def context_dim(self) -> int:
        return int(self.unet.config.cross_attention_dim)

    def freeze(self) -> "LatentDiffusion":
        """Every weight frozen and in eval mode (the teachers never train the diffusion model)."""
        for module in (self.unet, self.vae, self.text_encoder):
            if module is not None:
                module.requires_grad_(False).eval()
        return self

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Scaled latent means of images in [-1, 1], ``[B, 3, H, W]`` (RGB)."""
        return self.vae.encode(pixels).latent_dist.mean * self.latent_scale


def load_ldm(path: str | Path) -> LatentDiffusion:
    """A latent diffusion folder: the world model or a local Stable Diffusion 1.5 copy."""
    diffusers = import_diffusers()
    root = Path(path)
    missing = [part for part in ("unet", "vae") if not (root / part / "config.json").is_file()]
    if missing:
        raise CheckpointError(f"{root} is not a latent diffusion folder", expected="unet/ and vae/ subfolders "
                              "with config.json and diffusion_pytorch_model.safetensors (Stable Diffusion layout)",
                              got=f"missing {missing}", fix="pass the folder `edgereid diffusion pretrain` wrote, "
                              "or a local Stable Diffusion 1.5 folder")
    for part in ("unet", "vae"):
        if not (root / part / "diffusion_pytorch_model.safetensors").is_file():
            raise CheckpointError(f"{root / part} has no safetensors weights",
                                  expected="diffusion_pytorch_model.safetensors",
                                  fix="convert the weights to safetensors; pickled .bin files are never loaded")
    unet = diffusers.UNet2DConditionModel.from_pretrained(root / "unet", use_safetensors=True, local_files_only=True,
                                                          low_cpu_mem_usage=False)
    vae = diffusers.AutoencoderKL.from_pretrained(root / "vae", use_safetensors=True, local_files_only=True,
                                                          low_cpu_mem_usage=False)
    info = json.loads((root / INFO_FILE).read_text()) if (root / INFO_FILE).is_file() else {}
    image_hw = tuple(info.get("image_hw", (512, 512)))
    resize = info.get("resize", "letterbox" if info else "stretch")  # world models before "resize" was recorded
    schedule = dict(SD_SCHEDULE)
    if (root / "scheduler" / "scheduler_config.json").is_file():
        stored = json.loads((root / "scheduler" / "scheduler_config.json").read_text())
        schedule.update({k: stored[k] for k in SD_SCHEDULE if k in stored})
    text_encoder = _load_text_encoder(root / "text_encoder") if (root / "text_encoder" / INFO_FILE).is_file() else None
    return LatentDiffusion(unet, vae, diffusers.DDPMScheduler(**schedule), image_hw, text_encoder, resize)


def _load_text_encoder(folder: Path) -> nn.Module:
    from safetensors.torch import load_file

    from edgereid.diffusion.text import WordTextEncoder

    encoder = WordTextEncoder(**json.loads((folder / INFO_FILE).read_text()))
    encoder.load_state_dict(load_file(folder / "model.safetensors"))
    return encoder.eval()


def save_ldm(ldm: LatentDiffusion, path: str | Path, info: dict | None = None) -> Path:
    """Write the folder atomically: staged beside ``path``, then moved over it."""
    from safetensors.torch import save_file

    from edgereid.fileio import replace_dir

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    ldm.unet.save_pretrained(staged / "unet", safe_serialization=True)
    ldm.vae.save_pretrained(staged / "vae", safe_serialization=True)
    ldm.scheduler.save_pretrained(staged / "scheduler")
    if ldm.text_encoder is not None:
        (staged / "text_encoder").mkdir()
        save_file({k: v.contiguous() for k, v in ldm.text_encoder.state_dict().items()},
                  staged / "text_encoder" / "model.safetensors")
        (staged / "text_encoder" / INFO_FILE).write_text(json.dumps(ldm.text_encoder.config()))
    (staged / INFO_FILE).write_text(json.dumps({"image_hw": list(ldm.image_hw), "resize": ldm.resize, **(info or {})},
                                               indent=1))
    staged.chmod(0o755)
    return replace_dir(staged, target)


def diffusion_spec(image_hw: tuple[int, int], resize: str = "letterbox") -> InputSpec:
    """The crop layout a diffusion model reads: RGB scaled to [-1, 1] (mean = std = 127.5), letterboxed or
    stretched, so the runtime's own preprocessing (:func:`edgereid.ops.preprocess.normalise_batch`) feeds the VAE."""
    return InputSpec(height=int(image_hw[0]), width=int(image_hw[1]), color_order="RGB",
                     mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), resize=resize)
