"""CLIP ViT-B/16's vision tower as a person re-identification encoder: DCAC's official encoder (``methods.md``
§1.1), through ``transformers``' CLIP classes (``open_clip`` needs torchvision, which does not import with the CPU
torch used here).

The CLS token after the final LayerNorm, projected (``visual_projection``, 512-d for ViT-B/16), is the feature
``z``; a BNNeck (bias fixed at 0) and a bias-free classifier follow, as in :class:`~edgereid.models.reid.ReidStudent`.
Person crops are 256x128, a 16x8 patch grid, so CLIP's square grid of position embeddings is resized once
(bicubic) when the pretrained weights are loaded; the patch-embedding convolution is frozen
(``FREEZE_PATCH_PROJ``). Inputs are normalised with mean = std = 0.5, as the official code does.

Weights come from a local folder (``clip_path``: a ``transformers`` CLIP folder, ``config.json`` and
``model.safetensors``, e.g. ``openai/clip-vit-base-patch16`` fetched elsewhere); nothing is downloaded. The
architecture alone (``clip_config``) builds a randomly initialised tower, which is how checkpoints rebuild it
(the folder's config is stored, not its path) and how the tests build a tiny one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from edgereid.card import ModelCard
from edgereid.errors import CheckpointError, require
from edgereid.models.layers import embedding_card, l2_normalize
from edgereid.registry import register_model

CLIP_REID_MEAN = (127.5, 127.5, 127.5)  # mean = std = 0.5 in 0-1 units, as the official DCAC code
CLIP_REID_STD = (127.5, 127.5, 127.5)


def _vision_config(clip_path: str, clip_config: dict | None):
    transformers = require("transformers", "aio", "the CLIP encoder")
    if clip_config:
        return transformers.CLIPVisionConfig(**clip_config)
    folder = Path(clip_path)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder} is not a CLIP folder", expected="config.json and model.safetensors (a "
                              "transformers CLIP or CLIP vision model, e.g. openai/clip-vit-base-patch16)",
                              fix="download it on a machine with network access and pass its folder as clip_path")
    return transformers.CLIPVisionConfig.from_pretrained(str(folder), local_files_only=True)


class ClipReidEncoder(nn.Module):
    """CLIP's vision tower on person crops: embedding out (``forward``), BN feature and logits for training."""

    task = "reid"

    def __init__(self, clip_path: str = "", clip_config: dict | None = None, input_hw: tuple[int, int] = (256, 128),
                 num_classes: int = 0, freeze_patch_embedding: bool = True) -> None:
        super().__init__()
        transformers = require("transformers", "aio", "the CLIP encoder")
        config = _vision_config(clip_path, clip_config)
        self.input_hw = tuple(input_hw)
        patch = config.patch_size
        if any(side % patch for side in self.input_hw):
            raise CheckpointError("the CLIP encoder's input must be a multiple of its patch size",
                                  expected=f"multiples of {patch}", got=str(self.input_hw))
        self.grid = (self.input_hw[0] // patch, self.input_hw[1] // patch)
        if clip_path and not clip_config:
            self.clip = transformers.CLIPVisionModelWithProjection.from_pretrained(
                clip_path, local_files_only=True, use_safetensors=True)
        else:
            self.clip = transformers.CLIPVisionModelWithProjection(config)
        self.position = nn.Parameter(self._resized_positions())
        self.clip.vision_model.embeddings.patch_embedding.requires_grad_(not freeze_patch_embedding)
        self.clip.vision_model.embeddings.position_embedding.requires_grad_(False)  # replaced by ``position``
        self.embedding_dim = config.projection_dim
        self.bnneck = nn.BatchNorm1d(self.embedding_dim)
        self.bnneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(self.embedding_dim, num_classes, bias=False) if num_classes else None
        # checkpoints rebuild the architecture from the folder's config, never from the folder itself
        self.rebuild_args = {"clip_config": config.to_diff_dict(), "input_hw": list(self.input_hw),
                             "num_classes": num_classes, "freeze_patch_embedding": freeze_patch_embedding}

    def _resized_positions(self) -> torch.Tensor:
        """CLIP's position embeddings (CLS + a square grid) resized to this input's grid, ``[1 + h*w, D]``."""
        table = self.clip.vision_model.embeddings.position_embedding.weight.detach()
        side = int(round((table.shape[0] - 1) ** 0.5))
        grid = table[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        resized = F.interpolate(grid, size=self.grid, mode="bicubic", align_corners=False)
        return torch.cat([table[:1], resized.permute(0, 2, 3, 1).reshape(self.grid[0] * self.grid[1], -1)])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The projected CLS feature ``z`` of a batch ``[B, 3, H, W]``."""
        tower = self.clip.vision_model
        embeddings = tower.embeddings
        patches = embeddings.patch_embedding(x.to(embeddings.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        cls = embeddings.class_embedding.expand(patches.shape[0], 1, -1)  # traced as a dynamic batch
        tokens = tower.pre_layrnorm(torch.cat([cls, patches], dim=1) + self.position)
        hidden = tower.encoder(inputs_embeds=tokens).last_hidden_state
        return self.clip.visual_projection(tower.post_layernorm(hidden[:, 0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2_normalize(self.bnneck(self.features(x)))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        feat = self.features(x)
        return feat, self.classifier(self.bnneck(feat)) if self.classifier is not None else None

    def card(self, name: str) -> ModelCard:
        return embedding_card(name, "reid", self.input_hw, CLIP_REID_MEAN, CLIP_REID_STD, self.embedding_dim)


@register_model("clip_vit_b16", task="reid")
def clip_vit_b16(**kwargs: Any) -> ClipReidEncoder:
    """CLIP ViT-B/16's vision tower (``clip_path``: a local transformers CLIP folder), 256x128, 512-d: DCAC's
    official encoder. Needs the ``aio`` extra (transformers)."""
    return ClipReidEncoder(**kwargs)
