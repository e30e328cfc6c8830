"""Maps, Gaussians, affine warps and point selection for StableKeypoints (``methods.md`` §3.2-3.3).

A map stack is ``[..., T, H, W]``. Affine transforms are ``affine_grid`` matrices ``[B, 2, 3]`` in
normalised coordinates (-1..1, ``align_corners=False``): warping an image ``I`` by ``A`` gives
``J(p) = I(A p)``. Rotations are built in pixel-proportional units so a non-square image rotates
without shear.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F


def argmax_xy(maps: torch.Tensor) -> torch.Tensor:
    """(x, y) pixel indices ``[..., T, 2]`` of each map's maximum (column, row; not (row, col))."""
    height, width = maps.shape[-2:]
    flat = maps.flatten(-2).argmax(-1)
    return torch.stack((flat % width, flat // width), dim=-1)


def gaussian_maps(centres_xy: torch.Tensor, hw: tuple[int, int], sigma: float) -> torch.Tensor:
    """Unnormalised Gaussians (peak 1 at the centre of pixel ``centres_xy``) ``[..., T, H, W]``."""
    height, width = hw
    ys = torch.arange(height, dtype=torch.float32, device=centres_xy.device).view(height, 1)
    xs = torch.arange(width, dtype=torch.float32, device=centres_xy.device).view(1, width)
    cx = centres_xy[..., 0, None, None].float()
    cy = centres_xy[..., 1, None, None].float()
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))


def gaussian_kl(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """``KL(G_n || softmax_pixels(M_n))`` per token ``[..., T]``: small for maps that are one sharp blob."""
    target = gaussian_maps(argmax_xy(maps), maps.shape[-2:], sigma).flatten(-2)
    target = target / target.sum(-1, keepdim=True)
    log_p = F.log_softmax(maps.flatten(-2), dim=-1)
    return (target * (torch.log(target.clamp_min(1e-12)) - log_p)).sum(-1)


def furthest_point_sampling(points: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy furthest-point sampling of ``k`` indices from ``points [N, 2]``, as the official code does it:
    start from the furthest pair (the first such pair in index order), then add, one at a time, the point whose
    distance to its nearest chosen point is largest (the first in index order on ties)."""
    if k > len(points):
        raise ValueError(f"cannot choose {k} of {len(points)} points")
    points = points.float()
    if k == 1:
        return torch.zeros(1, dtype=torch.long)
    distances = torch.cdist(points, points)
    pairs = torch.triu(distances + 1.0, diagonal=1)  # i < j only; +1 so coinciding points still form a pair
    first, second = divmod(int(pairs.argmax()), len(points))  # row-major: the first maximal pair
    chosen = [first, second]
    nearest = torch.minimum(distances[first], distances[second])
    for _ in range(k - 2):
        nearest[chosen] = -1.0  # never chosen twice, even when every remaining point coincides with one
        nxt = int(nearest.argmax())
        chosen.append(nxt)
        nearest = torch.minimum(nearest, distances[nxt])
    return torch.tensor(chosen, dtype=torch.long, device=points.device)


def select_tokens(maps: torch.Tensor, candidates: int, k: int, sigma: float,
                  fps_maps: torch.Tensor | None = None) -> torch.Tensor:
    """Token indices of one image's maps ``[T, H, W]``: the ``candidates`` sharpest by Gaussian KL on ``maps``,
    thinned to ``k`` by furthest-point sampling on the peaks of ``fps_maps`` (default ``maps``). During token
    learning the official code ranks on the original image's maps and samples on the warped image's."""
    ranked = gaussian_kl(maps, sigma).argsort()[:candidates]
    peaks = argmax_xy((maps if fps_maps is None else fps_maps)[ranked])
    return ranked[furthest_point_sampling(peaks, k).to(ranked.device)]


def padding_mask(points_xy: np.ndarray, placement: np.ndarray) -> np.ndarray:
    """``[N, K]``: which points ``[N, K, 2]`` (model-input pixels, pixel ``i`` centred at ``i``) lie outside their
    image's placement ``[N, 4]`` (x, y, w, h of the resized crop in the input), i.e. in letterbox bars."""
    x0, y0 = placement[:, None, 0] - 0.5, placement[:, None, 1] - 0.5
    x1, y1 = x0 + placement[:, None, 2], y0 + placement[:, None, 3]
    x, y = points_xy[..., 0], points_xy[..., 1]
    return (x < x0) | (x > x1) | (y < y0) | (y > y1)


def share_in_padding(points_xy: np.ndarray, placement: np.ndarray) -> float:
    """The share of points in letterbox bars (:func:`padding_mask`); 0 for stretched inputs, which have none."""
    outside = padding_mask(points_xy, placement)
    return float(outside.mean()) if outside.size else 0.0


def random_affine(batch: int, hw: tuple[int, int], generator: torch.Generator, degrees: float = 15.0,
                  scale: tuple[float, float] = (0.8, 1.0), translate: float = 0.25) -> torch.Tensor:
    """``[B, 2, 3]`` matrices: rotation U(±degrees), scale U(scale), translation U(±translate) in
    normalised units (the official ranges), on the generator's device. The matrix is multiplied by the scale, as
    the official code does, so a scale below 1 samples a smaller region: the warped image is zoomed in."""
    height, width = hw
    device = generator.device
    angle = (torch.rand(batch, generator=generator, device=device) * 2 - 1) * math.radians(degrees)
    zoom = scale[0] + torch.rand(batch, generator=generator, device=device) * (scale[1] - scale[0])
    shift = (torch.rand(batch, 2, generator=generator, device=device) * 2 - 1) * translate
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    aspect = height / width  # normalised x spans W pixels, y spans H: rotate in pixel units
    theta = torch.zeros(batch, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * aspect
    theta[:, 1, 0], theta[:, 1, 1] = sin / aspect, cos
    theta[:, :, 2] = shift
    return theta


def invert_affine(theta: torch.Tensor) -> torch.Tensor:
    """The matrices of the inverse transforms ``[B, 2, 3]``."""
    full = torch.cat([theta, torch.tensor([0.0, 0.0, 1.0], device=theta.device).expand(len(theta), 1, 3)], dim=1)
    return torch.linalg.inv(full)[:, :2]


def warp(images: torch.Tensor, theta: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``images [B, C, H, W]`` warped by ``theta``; samples from outside the image are 0."""
    size = size or images.shape[-2:]
    grid = F.affine_grid(theta, [len(images), images.shape[1], *size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def equivariance_loss(maps: torch.Tensor, maps_of_warped: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``mean |M(I) - T^-1[M(T(I))]|^2`` over the pixels that ``T^-1`` brings back from inside the image.

    The official code averages over all pixels with the outside set to 0; masking it out instead keeps
    the loss at ~0 for maps that are equivariant (the outside of a warped image holds no information)."""
    inverse = invert_affine(theta)
    back = warp(maps_of_warped, inverse)
    inside = (warp(torch.ones_like(maps_of_warped[:, :1]), inverse) > 0.999).to(maps.dtype)
    return ((maps - back) ** 2 * inside).sum() / (inside.sum() * maps.shape[1]).clamp_min(1.0)


def localisation_loss(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """``mean |M_n - G_n|^2`` against peak-1 Gaussians at each map's (non-differentiable) argmax."""
    target = gaussian_maps(argmax_xy(maps.detach()), maps.shape[-2:], sigma)
    return F.mse_loss(maps, target)
