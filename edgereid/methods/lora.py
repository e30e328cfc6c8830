"""Low-rank adapters on a frozen network's linear layers (what DCAC fine-tunes the UNet with).

``W x + (alpha / r) * B A x`` with ``A`` random and ``B`` zero at the start, as ``loralib`` does, so an
adapted network starts out identical to the frozen one; the frozen weights still pass gradient on to
their inputs. DCAC's official targets (``loralib.Linear`` in every attention block) are, in diffusers'
names, ``to_q``, ``to_k``, ``to_v``, ``to_out.0`` of every attention module and ``ff.net.0.proj``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DCAC_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj")


class LoraLinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 1.0) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


def add_lora(module: nn.Module, rank: int, alpha: float = 1.0,
             targets: tuple[str, ...] = DCAC_TARGETS) -> list[nn.Parameter]:
    """Replace every linear layer whose name ends with one of ``targets`` by a :class:`LoraLinear`;
    returns the new trainable parameters (an error when nothing matched)."""
    names = [name for name, child in module.named_modules()
             if isinstance(child, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets)]
    if not names:
        raise ValueError(f"no linear layer named {targets} to adapt: pass the names of the attention "
                         "projections of this network (diffusers: to_q, to_k, to_v, to_out.0, ff.net.0.proj)")
    params: list[nn.Parameter] = []
    for name in names:
        parent_name, _, leaf = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        adapted = LoraLinear(getattr(parent, leaf) if not leaf.isdigit() else parent[int(leaf)], rank, alpha)
        if leaf.isdigit():
            parent[int(leaf)] = adapted
        else:
            setattr(parent, leaf, adapted)
        params += [adapted.lora_a, adapted.lora_b]
    return params
