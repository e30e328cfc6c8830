"""Keypoint students: heatmaps plus an in-graph soft-argmax, per the design's keypoint contract.

Outputs ``heatmaps [B,K,h,w]``, ``coords [B,K,2]`` as (x, y) in input-crop pixels (heatmap cell
``j`` has its centre at input pixel ``(j + 0.5) * stride - 0.5``) and ``confidence [B,K]`` (the
heatmap peak, clipped to [0, 1]).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgereid.card import COCO17_JOINTS, InputSpec, ModelCard, OutputSpec
from edgereid.models.layers import ConvBNAct, MobileNetV2Trunk
from edgereid.models.reid import IMAGENET_MEAN, IMAGENET_STD
from edgereid.registry import register_model

COCO17_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
                   (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4))


def soft_argmax(heatmaps: torch.Tensor, stride: int, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected (x, y) of ``softmax(beta * heatmap)`` in input pixels, and the clipped peak value."""
    batch, joints, height, width = heatmaps.shape
    probs = F.softmax(heatmaps.reshape(batch, joints, height * width) * beta, dim=-1)
    probs = probs.reshape(batch, joints, height, width)
    xs = (torch.arange(width, dtype=heatmaps.dtype, device=heatmaps.device) + 0.5) * stride - 0.5
    ys = (torch.arange(height, dtype=heatmaps.dtype, device=heatmaps.device) + 0.5) * stride - 0.5
    x = (probs.sum(dim=2) * xs).sum(dim=-1)
    y = (probs.sum(dim=3) * ys).sum(dim=-1)
    confidence = heatmaps.amax(dim=(2, 3)).clamp(0.0, 1.0)
    return torch.stack((x, y), dim=-1), confidence


class KeypointStudent(nn.Module):
    """MobileNetV2 trunk to stride 16, two x2 upsampling stages, 1x1 to K heatmaps (stride 4)."""

    task = "keypoints"

    def __init__(self, width: float = 0.5, num_joints: int = 17, input_hw: tuple[int, int] = (256, 192),
                 head_channels: int = 64, beta: float = 20.0, trunk_stages: int = 5,
                 stages: tuple | None = None, joint_names: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.input_hw = tuple(input_hw)
        self.num_joints = num_joints
        self.beta = beta
        self.joint_names = tuple(joint_names) if joint_names else (
            COCO17_JOINTS if num_joints == 17 else tuple(f"k{i}" for i in range(num_joints)))
        plan = {"stages": stages} if stages else {}
        self.trunk = MobileNetV2Trunk(width, num_stages=trunk_stages, **plan)
        self.up1 = ConvBNAct(self.trunk.out_channels, head_channels, 3, act=nn.ReLU)
        self.up2 = ConvBNAct(head_channels, head_channels, 3, act=nn.ReLU)
        self.head = nn.Conv2d(head_channels, num_joints, 1)
        self.stride = self.trunk.stride // 4

    def forward_heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.trunk(x)
        feat = self.up1(F.interpolate(feat, scale_factor=2.0, mode="bilinear", align_corners=False))
        feat = self.up2(F.interpolate(feat, scale_factor=2.0, mode="bilinear", align_corners=False))
        return self.head(feat)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        heatmaps = self.forward_heatmaps(x)
        coords, confidence = soft_argmax(heatmaps, self.stride, self.beta)
        return heatmaps, coords, confidence

    def card(self, name: str) -> ModelCard:
        height, width = self.input_hw
        k = self.num_joints
        hm = (k, height // self.stride, width // self.stride)
        return ModelCard(
            name=name, task="keypoints",
            input=InputSpec(height=height, width=width, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                            resize="letterbox"),
            outputs=(OutputSpec("heatmaps", "heatmaps", hm), OutputSpec("coords", "coords", (k, 2)),
                     OutputSpec("confidence", "confidence", (k,))),
            joint_names=self.joint_names,
            skeleton=COCO17_SKELETON if k == 17 else (),
        )


@register_model("kp_mobilenet_w050", task="keypoints")
def kp_mobilenet_w050(**kwargs) -> KeypointStudent:
    """MobileNetV2 x0.5 to stride 16, heatmaps at stride 4, COCO-17, 256x192 letterbox."""
    return KeypointStudent(**kwargs)


@register_model("kp_mobilenet_w050_128x96", task="keypoints")
def kp_mobilenet_w050_128x96(**kwargs) -> KeypointStudent:
    """The same student at 128x96 input, for CPU training."""
    return KeypointStudent(**{"input_hw": (128, 96), **kwargs})


@register_model("test_keypoints", task="keypoints")
def test_keypoints(**kwargs) -> KeypointStudent:
    """Tiny random-weight keypoint model for tests: 64x48 input, COCO-17."""
    stages = ((1, 16, 1, 1), (2, 24, 1, 2), (2, 32, 1, 2), (2, 32, 1, 2))
    return KeypointStudent(**{"width": 0.25, "input_hw": (64, 48), "head_channels": 16, "stages": stages,
                              "trunk_stages": 4, **kwargs})
