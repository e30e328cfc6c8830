"""AIO's visual foundation encoder option (``encoder: {kind: clip, path: DIR}``): a CLIP model, frozen, as the
paper's LAION ViT is, loaded through ``transformers`` from a local folder (``config.json``, ``model.safetensors``,
``tokenizer.json``, e.g. ``openai/clip-vit-base-patch16`` fetched elsewhere; nothing is downloaded).

What changes against the MiniLM encoder (:mod:`edgereid.methods.aio.encoder`):

- **Images** enter through CLIP's own pre-trained patch embedding and position embeddings (resized once,
  bicubic, to the crop's patch grid), so the visual representation is CLIP's rather than a conv stem trained from
  scratch; :class:`~edgereid.methods.aio.model.AIOModel` adds its trainable per-modality tokenizer on top through
  a gate that starts at 0. Crops keep AIO's ImageNet normalisation and are re-normalised to CLIP's mean and std
  inside (a fixed per-channel affine, so the exported branches keep their card).
- **Captions** go through CLIP's whole text tower (causal, frozen); its per-token outputs are projected into the
  vision width by AIO's trainable text adapter, then join the image tokens in the shared frozen encoder, which is
  CLIP's vision transformer (pre-LayerNorm, layers, post-LayerNorm).
- **Special tokens:** CLIP's tokenizer has start and end of text only, so ``[CLS]`` is ``<|startoftext|>`` and
  ``[SEP]``, ``[PAD]`` and ``[MASK]`` (the VA objective's hidden words) are ``<|endoftext|>``; the causal text
  tower never lets a later token change an earlier one.
- ``[CLS]`` of the multimodal sequence starts as CLIP's vision class embedding.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from edgereid.errors import CheckpointError, ConfigError, require
from edgereid.models.reid import IMAGENET_MEAN, IMAGENET_STD

CLIP_MEAN = (0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255)
CLIP_STD = (0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255)
CLIP_FILES = ("config.json", "model.safetensors", "tokenizer.json")


class ClipFrozenEncoder(nn.Module):
    """CLIP's vision transformer as AIO's shared frozen encoder, its text tower for captions; never trains."""

    def __init__(self, clip: nn.Module, tokenizer, spec, input_hw: tuple[int, int], digest: str = "") -> None:
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.spec = spec
        self.digest = digest
        self.vision = getattr(clip.vision_model, "vision_model", clip.vision_model)
        self.text = clip.text_model
        self.width = clip.config.vision_config.hidden_size
        self.text_width = clip.config.text_config.hidden_size
        start, end = tokenizer.token_to_id("<|startoftext|>"), tokenizer.token_to_id("<|endoftext|>")
        if start is None or end is None:
            raise CheckpointError("the CLIP folder's tokenizer lacks <|startoftext|> / <|endoftext|>",
                                  fix="use the tokenizer.json that ships with the CLIP model")
        self.special = {"[PAD]": end, "[UNK]": end, "[CLS]": start, "[SEP]": end, "[MASK]": end}
        embeddings = self.vision.embeddings
        patch = embeddings.patch_embedding.kernel_size[0]
        if input_hw[0] % patch or input_hw[1] % patch:
            raise ConfigError("AIO's crops must be multiples of CLIP's patch size", expected=f"multiples of {patch}",
                              got=str(tuple(input_hw)))
        grid = (input_hw[0] // patch, input_hw[1] // patch)
        table = embeddings.position_embedding.weight.detach()
        side = int(round((table.shape[0] - 1) ** 0.5))
        square = table[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        resized = F.interpolate(square, size=grid, mode="bicubic", align_corners=False)
        self.register_buffer("patch_positions", resized.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1),
                             persistent=False)
        # AIO's ImageNet-normalised pixels -> CLIP's normalisation: x_clip = x * a + b per channel
        scale = torch.tensor(IMAGENET_STD) / torch.tensor(CLIP_STD)
        shift = (torch.tensor(IMAGENET_MEAN) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
        self.register_buffer("renorm_scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("renorm_shift", shift.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "ClipFrozenEncoder":
        """Stays in eval mode: the encoder is frozen, not fine-tuned."""
        return self

    def initial_cls(self) -> torch.Tensor:
        """``[1, 1, D]``: CLIP's vision class embedding with its position, the multimodal ``[CLS]``'s start."""
        embeddings = self.vision.embeddings
        return (embeddings.class_embedding + embeddings.position_embedding.weight[0]).view(1, 1, -1)

    def patch_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP's patch tokens with positions ``[B, h*w, D]`` of ImageNet-normalised crops ``[B, 3, H, W]``."""
        pixels = images * self.renorm_scale + self.renorm_shift
        patches = self.vision.embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        return patches + self.patch_positions

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        """CLIP's text tower outputs per token ``[B, L, text_width]`` (causal: padding changes nothing before it)."""
        return self.text(input_ids=ids).last_hidden_state

    def forward(self, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Vision-transformer outputs ``[B, L, D]`` for a token sequence; ``keep`` marks the real tokens."""
        additive = torch.zeros_like(keep, dtype=tokens.dtype).masked_fill(~keep, torch.finfo(tokens.dtype).min)
        hidden = self.vision.encoder(inputs_embeds=self.vision.pre_layrnorm(tokens),
                                     attention_mask=additive[:, None, None, :]).last_hidden_state
        return self.vision.post_layernorm(hidden)


def load_clip_encoder(spec, input_hw: tuple[int, int]) -> ClipFrozenEncoder:
    """The frozen CLIP encoder from ``spec.path`` (a transformers CLIP folder)."""
    transformers = require("transformers", "aio", "AIO's CLIP encoder")
    from tokenizers import Tokenizer

    from edgereid.card import file_sha256

    folder = Path(spec.path)
    missing = [name for name in CLIP_FILES if not (folder / name).is_file()]
    if not spec.path or missing:
        raise ConfigError(f"{folder} is not a CLIP folder", expected=", ".join(CLIP_FILES),
                          got=f"missing {missing}" if spec.path else "no encoder.path",
                          fix="point encoder.path at a local transformers CLIP folder (e.g. openai/clip-vit-base-"
                              "patch16 downloaded elsewhere); nothing is downloaded")
    clip = transformers.CLIPModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
    digest = hashlib.sha256((file_sha256(folder / "model.safetensors") + file_sha256(folder / "tokenizer.json"))
                            .encode()).hexdigest()
    return ClipFrozenEncoder(clip, Tokenizer.from_file(str(folder / "tokenizer.json")), spec, tuple(input_hw), digest)
