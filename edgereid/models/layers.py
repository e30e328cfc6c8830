"""Building blocks shared by the students, in plain torch (no torchvision)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from edgereid.card import InputSpec, ModelCard, OutputSpec


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` (as MobileNet does), never below 90%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNAct(nn.Sequential):
    """Convolution, batch norm and an optional activation."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU6) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand 1x1, depthwise 3x3, project 1x1, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int,
                 act: type[nn.Module] = nn.ReLU6) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, 1, act=act))
        layers += [ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act=act),
                   ConvBNAct(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


# (expansion, channels, repeats, stride) per stage, as in MobileNetV2.
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2Trunk(nn.Module):
    """MobileNetV2 feature extractor with a width multiplier and an optional stage cut-off.

    ``num_stages`` keeps the first stages only (dense tasks stop at stride 16); ``stages`` lets tiny
    test variants shrink the plan.
    """

    def __init__(self, width: float = 1.0, num_stages: int | None = None,
                 stages: tuple[tuple[int, int, int, int], ...] = MOBILENET_V2_STAGES,
                 act: type[nn.Module] = nn.ReLU6) -> None:
        super().__init__()
        stem = make_divisible(32 * width)
        blocks: list[nn.Module] = [ConvBNAct(3, stem, 3, 2, act=act)]
        cin = stem
        for expand, channels, repeats, stride in stages[:num_stages]:
            cout = make_divisible(channels * width)
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand, act))
                cin = cout
        self.features = nn.Sequential(*blocks)
        self.out_channels = cin
        self.stride = 2 * math.prod(s for *_, s in stages[:num_stages])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Unit-length rows; exported as ReduceL2 + Div, kept in FP32 by the precision converter."""
    return F.normalize(x, p=2.0, dim=1, eps=1e-12)


def embedding_card(name: str, task: str, input_hw: tuple[int, int], mean: tuple[float, float, float],
                   std: tuple[float, float, float], embedding_dim: int) -> ModelCard:
    """The card of a student whose one output is an L2-normalised ``embedding`` (ReID and face students)."""
    height, width = input_hw
    return ModelCard(name=name, task=task, input=InputSpec(height=height, width=width, mean=mean, std=std),
                     outputs=(OutputSpec("embedding", "embedding", (embedding_dim,)),), embedding_dim=embedding_dim)
