"""Losses shared by the baselines and the methods: ID, metric, margin-softmax and keypoint terms."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def label_smoothed_ce(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy against ``(1 - eps) * onehot + eps / C`` (the strong ReID baseline's ID loss)."""
    return F.cross_entropy(logits, targets, label_smoothing=epsilon)


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Triplet loss with the hardest positive and negative per anchor, on Euclidean distances."""
    dist = torch.cdist(features, features).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    hardest_pos = (dist * same).amax(dim=1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)
    valid = torch.isfinite(hardest_neg)
    if not valid.any():
        return features.sum() * 0.0
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()


class ArcMarginHead(nn.Module):
    """Additive angular margin classifier (ArcFace): ``s * cos(theta + m)`` for the target class."""

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 32.0, margin: float = 0.5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.weight, std=0.01)
        self.scale = scale
        self.margin = margin

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embeddings), F.normalize(self.weight))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(embeddings).clamp(-1 + 1e-7, 1 - 1e-7)
        target = cos.gather(1, labels[:, None])
        theta = torch.acos(target)
        # past theta = pi - m, cos(theta + m) would rise again: use insightface's fallback cos(theta) - m sin(m)
        with_margin = torch.where(theta + self.margin < math.pi, torch.cos(theta + self.margin),
                                  target - self.margin * math.sin(self.margin))
        logits = cos.scatter(1, labels[:, None], with_margin) * self.scale
        return F.cross_entropy(logits, labels)


def gaussian_heatmaps(points: torch.Tensor, visible: torch.Tensor, size: tuple[int, int], stride: int,
                      sigma: float = 1.5) -> torch.Tensor:
    """Target heatmaps ``[B, K, h, w]`` with peak 1 at each visible point (input px, x/y), zero elsewhere."""
    height, width = size
    ys = (torch.arange(height, dtype=points.dtype) + 0.5) * stride - 0.5
    xs = (torch.arange(width, dtype=points.dtype) + 0.5) * stride - 0.5
    dx = (xs[None, None, None, :] - points[..., 0, None, None]) / stride
    dy = (ys[None, None, :, None] - points[..., 1, None, None]) / stride
    maps = torch.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))
    return maps * visible[..., None, None].to(maps.dtype)


def keypoint_loss(heatmaps: torch.Tensor, coords: torch.Tensor, target_points: torch.Tensor,
                  visible: torch.Tensor, stride: int, input_hw: tuple[int, int],
                  coord_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Heatmap MSE to Gaussians (all joints; invisible ones to zero) + L1 on soft-argmax coordinates."""
    target = gaussian_heatmaps(target_points, visible, heatmaps.shape[-2:], stride)
    heat = F.mse_loss(heatmaps, target) * 100.0
    scale = torch.tensor([input_hw[1], input_hw[0]], dtype=coords.dtype)
    err = ((coords - target_points).abs() / scale).sum(-1)
    weight = visible.to(coords.dtype)
    coord = (err * weight).sum() / weight.sum().clamp_min(1.0)
    return {"heatmap": heat, "coords": coord * coord_weight}
