"""IResNet-18/50/100: the face recognition backbones of insightface's ``arcface_torch`` (and of the CoReFace and
CCFace papers), written here in plain torch from the published architecture.

A 112x112 aligned face, normalised to [-1, 1] (mean = std = 127.5, RGB), passes a 3x3 stem (64 channels, BN,
PReLU) and four stages of improved residual blocks (BN -> conv3x3 -> BN -> PReLU -> conv3x3 (stride) -> BN, plus
the shortcut; a 1x1 conv + BN shortcut where the shape changes) of 64, 128, 256 and 512 channels, each starting
with stride 2, to a 7x7x512 map; then BN, flatten, dropout, a fully connected layer to the embedding and a final
BatchNorm1d whose scale is fixed at 1. Blocks per stage: [2, 2, 2, 2] (r18), [3, 4, 14, 3] (r50), [3, 13, 30, 3]
(r100). BatchNorm epsilon 1e-5, as the reference. The interface is the face students' (``pre_embedding``,
``embedding_head``, ``features``, ``classifier``), so CoReFace's dropout views and CCFace's distillation use it
unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from edgereid.card import ModelCard
from edgereid.models.face import FaceEmbeddingModel
from edgereid.models.layers import embedding_card
from edgereid.registry import register_model

IRESNET_LAYERS = {18: (2, 2, 2, 2), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}
IRESNET_MEAN = (127.5, 127.5, 127.5)
IRESNET_STD = (127.5, 127.5, 127.5)
BN_EPS = 1e-5


class ImprovedBasicBlock(nn.Module):
    """BN -> 3x3 conv -> BN -> PReLU -> 3x3 conv (stride) -> BN, added to the (projected) input."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(inplanes, eps=BN_EPS), nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False),
            nn.BatchNorm2d(planes, eps=BN_EPS), nn.PReLU(planes),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes, eps=BN_EPS))
        self.shortcut = nn.Identity() if stride == 1 and inplanes == planes else nn.Sequential(
            nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes, eps=BN_EPS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class IResNet(FaceEmbeddingModel):
    """Aligned 112x112 face in, L2-normalised embedding out (``features``: before normalisation)."""

    task = "face"

    def __init__(self, depth: int = 50, embedding_dim: int = 512, input_size: int = 112, dropout: float = 0.0,
                 num_classes: int = 0) -> None:
        super().__init__()
        if depth not in IRESNET_LAYERS or input_size % 16:
            raise ValueError(f"IResNet depth is one of {sorted(IRESNET_LAYERS)} and its input a multiple of 16, "
                             f"got depth {depth}, input {input_size}")
        self.input_hw = (input_size, input_size)
        self.embedding_dim = embedding_dim
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64, eps=BN_EPS), nn.PReLU(64))
        stages, inplanes = [], 64
        for planes, blocks in zip((64, 128, 256, 512), IRESNET_LAYERS[depth]):
            stages += [ImprovedBasicBlock(inplanes, planes, 2)] + [ImprovedBasicBlock(planes, planes, 1)
                                                                   for _ in range(blocks - 1)]
            inplanes = planes
        self.stages = nn.Sequential(*stages)
        self.bn2 = nn.BatchNorm2d(512, eps=BN_EPS)
        self.dropout = nn.Dropout(dropout)
        side = input_size // 16
        self.fc = nn.Linear(512 * side * side, embedding_dim)
        self.bn = nn.BatchNorm1d(embedding_dim, eps=BN_EPS)
        nn.init.constant_(self.bn.weight, 1.0)
        self.bn.weight.requires_grad_(False)  # the reference fixes the final BN's scale
        self.classifier = nn.Linear(embedding_dim, num_classes, bias=False) if num_classes else None
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0, 0.1)  # the reference's initialisation
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1.0)
                nn.init.constant_(module.bias, 0.0)

    def pre_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened last feature map (where CoReFace applies its dropout views)."""
        return self.dropout(torch.flatten(self.bn2(self.stages(self.stem(x))), 1))

    def embedding_head(self, pre: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(pre))

    def card(self, name: str) -> ModelCard:
        return embedding_card(name, "face", self.input_hw, IRESNET_MEAN, IRESNET_STD, self.embedding_dim)


@register_model("iresnet18", task="face")
def iresnet18(**kwargs) -> IResNet:
    """IResNet-18 (arcface_torch r18), 112x112, 512-d."""
    return IResNet(**{"depth": 18, **kwargs})


@register_model("iresnet50", task="face")
def iresnet50(**kwargs) -> IResNet:
    """IResNet-50 (arcface_torch r50), 112x112, 512-d: the CoReFace / CCFace papers' backbone."""
    return IResNet(**{"depth": 50, **kwargs})


@register_model("iresnet100", task="face")
def iresnet100(**kwargs) -> IResNet:
    """IResNet-100 (arcface_torch r100), 112x112, 512-d."""
    return IResNet(**{"depth": 100, **kwargs})
