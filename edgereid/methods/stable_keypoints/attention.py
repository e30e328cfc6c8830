"""Cross-attention maps of chosen UNet layers, captured with ``diffusers`` attention processors.

The official StableKeypoints code monkey-patches ``CrossAttention`` modules of diffusers 0.8; current
diffusers names every attention processor, so the maps are captured by swapping in
:class:`TokenMapProcessor` on the ``attn2`` (cross-attention) processors of the configured modules,
selected by name. Each captured layer's query features are upsampled (bicubic) to a common map size
before ``to_q``, and ``softmax_tokens(QK^T * scale)`` is recomputed there: a softmax over tokens, so
every pixel spreads unit mass over the tokens. The UNet's own output keeps the layer's original
processor, so capturing does not change it. Maps are averaged over heads and layers.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch.nn import functional as F

from edgereid.errors import ConfigError

def cross_attention_layers(unet) -> list[str]:
    """The module names (without the processor suffix) of every cross-attention layer of a UNet."""
    return [name.split(".transformer_blocks")[0] for name in unet.attn_processors if ".attn2." in name]


def processor_names(unet, layers: tuple[str, ...]) -> list[str]:
    """The ``attn2`` processor names under each of ``layers``; an unknown layer is a ConfigError."""
    names = [n for n in unet.attn_processors if ".attn2." in n]
    chosen = []
    for layer in layers:
        matches = [n for n in names if n.startswith(layer + ".")]
        if not matches:
            raise ConfigError(f"no cross-attention layer {layer!r} in this UNet",
                              expected=f"names from {cross_attention_layers(unet)}",
                              fix="set `layers` in the config to up-path attention modules of the model")
        chosen += matches
    return chosen


class TokenMapProcessor:
    """Runs the layer's original processor and stores ``softmax_tokens`` maps at ``map_hw``."""

    def __init__(self, original, store: list[torch.Tensor], map_hw: tuple[int, int],
                 latent_hw: tuple[int, int]) -> None:
        self.original = original
        self.store = store
        self.map_hw = map_hw
        self.latent_hw = latent_hw

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        out = self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        batch, length, channels = hidden_states.shape
        stride = math.sqrt(self.latent_hw[0] * self.latent_hw[1] / length)
        height, width = round(self.latent_hw[0] / stride), round(self.latent_hw[1] / stride)
        if height * width != length:
            raise ValueError(f"cannot place {length} attention queries on the {self.latent_hw} latent's grid; "
                             "use image sizes that halve cleanly through the UNet")
        features = hidden_states.transpose(1, 2).reshape(batch, channels, height, width)
        features = F.interpolate(features, size=self.map_hw, mode="bicubic", align_corners=False)
        query = attn.head_to_batch_dim(attn.to_q(features.flatten(2).transpose(1, 2)))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, None)  # [B*heads, HW, T], softmax over tokens
        self.store.append(probs.reshape(batch, attn.heads, *probs.shape[1:]).mean(1))
        return out


@contextmanager
def capture_token_maps(unet, layers: tuple[str, ...], map_hw: tuple[int, int],
                       latent_hw: tuple[int, int]) -> Iterator[list[torch.Tensor]]:
    """Within the block, every UNet call appends ``[B, HW, T]`` maps per captured layer to the yielded
    list; the original processors are restored on exit, even after an error."""
    originals = unet.attn_processors
    store: list[torch.Tensor] = []
    chosen = processor_names(unet, layers)
    swapped = {name: TokenMapProcessor(proc, store, map_hw, latent_hw) if name in chosen else proc
               for name, proc in originals.items()}
    unet.set_attn_processor(swapped)
    try:
        yield store
    finally:
        unet.set_attn_processor(originals)


def stack_maps(store: list[torch.Tensor], map_hw: tuple[int, int]) -> torch.Tensor:
    """The captured layers averaged: ``[B, T, H, W]``, summing to 1 over tokens at each pixel."""
    mean = torch.stack(store).mean(0)
    return mean.transpose(1, 2).reshape(mean.shape[0], mean.shape[2], *map_hw)
