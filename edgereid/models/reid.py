"""Person re-identification students: MobileNetV2-class trunk, BNNeck, 512-d unit embedding."""

from __future__ import annotations

import torch
from torch import nn

from edgereid.card import ModelCard
from edgereid.models.layers import MobileNetV2Trunk, embedding_card, l2_normalize
from edgereid.registry import register_model

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


class ReidStudent(nn.Module):
    """Crop in, L2-normalised embedding out.

    ``forward`` is the deployed graph (embedding only); ``forward_train`` also returns the
    pre-BNNeck feature (for metric losses) and the ID logits when ``num_classes`` > 0.
    """

    task = "reid"

    def __init__(self, width: float = 0.5, embedding_dim: int = 512, input_hw: tuple[int, int] = (256, 128),
                 num_classes: int = 0, stages: tuple | None = None) -> None:
        super().__init__()
        self.input_hw = tuple(input_hw)
        self.embedding_dim = embedding_dim
        self.trunk = MobileNetV2Trunk(width, stages=stages) if stages else MobileNetV2Trunk(width)
        self.project = nn.Sequential(nn.Conv2d(self.trunk.out_channels, embedding_dim, 1, bias=False),
                                     nn.BatchNorm2d(embedding_dim), nn.ReLU())
        self.bnneck = nn.BatchNorm1d(embedding_dim)
        self.bnneck.bias.requires_grad_(False)  # BNNeck: no shift, as in the strong ReID baseline
        self.classifier = nn.Linear(embedding_dim, num_classes, bias=False) if num_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.trunk(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2_normalize(self.bnneck(self.features(x)))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        feat = self.features(x)
        logits = self.classifier(self.bnneck(feat)) if self.classifier is not None else None
        return feat, logits

    def card(self, name: str) -> ModelCard:
        return embedding_card(name, "reid", self.input_hw, IMAGENET_MEAN, IMAGENET_STD, self.embedding_dim)


@register_model("reid_mobilenet_w050", task="reid")
def reid_mobilenet_w050(**kwargs) -> ReidStudent:
    """MobileNetV2 x0.5 trunk, 512-d, 256x128 input (~1.3M parameters)."""
    return ReidStudent(**{"width": 0.5, **kwargs})


@register_model("reid_mobilenet_w050_128x64", task="reid")
def reid_mobilenet_w050_128x64(**kwargs) -> ReidStudent:
    """The same student at 128x64 input, for CPU training."""
    return ReidStudent(**{"width": 0.5, "input_hw": (128, 64), **kwargs})


@register_model("reid_teacher_w100", task="reid")
def reid_teacher_w100(**kwargs) -> ReidStudent:
    """The ReID teacher encoder at the datasets' usual 256x128 input (MobileNetV2 x1.0, 512-d)."""
    return ReidStudent(**{"width": 1.0, **kwargs})


@register_model("reid_teacher_w100_128x64", task="reid")
def reid_teacher_w100_128x64(**kwargs) -> ReidStudent:
    """A wider encoder (MobileNetV2 x1.0, 512-d, 128x64) for the world-scale ReID teachers (DCAC);
    it stands in for the paper's CLIP ViT-B/16, which this machine can neither download nor train."""
    return ReidStudent(**{"width": 1.0, "input_hw": (128, 64), **kwargs})


@register_model("test_reid", task="reid")
def test_reid(**kwargs) -> ReidStudent:
    """Tiny random-weight ReID model for tests: 64x32 input, 32-d."""
    stages = ((1, 16, 1, 1), (2, 24, 1, 2), (2, 32, 1, 2))
    return ReidStudent(**{"width": 0.25, "embedding_dim": 32, "input_hw": (64, 32), "stages": stages,
                          **kwargs})
