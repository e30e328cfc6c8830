"""Drawing shapes given in model units onto supersampled canvases.

The synthetic world describes people and faces in their own units (a body is 1 tall, a face is 2
wide); a :class:`Similarity` places those units in image pixels. :class:`Painter` draws through
the placement onto a canvas ``SUPERSAMPLE`` times larger than the final image, which is then
reduced with ``INTER_AREA``: that averaging is the anti-aliasing.

Coordinates: continuous pixel coordinates where pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``,
the convention of boxes. Keypoints and landmarks are reported in it, so a box ``(0, 0, W, H)``
holds the whole image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SUPERSAMPLE = 2
_SHIFT = 4  # fractional bits of cv2 drawing coordinates
_FIXED = float(1 << _SHIFT)

Colour = tuple[float, float, float]


@dataclass(frozen=True)
class Similarity:
    """The map ``p -> scale * R(angle) p + (tx, ty)``; angle in radians, clockwise on screen."""

    scale: float
    angle: float = 0.0
    tx: float = 0.0
    ty: float = 0.0

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points ``[..., 2]`` to the target frame."""
        p = np.asarray(points, dtype=np.float64)
        a, b = self.scale * math.cos(self.angle), self.scale * math.sin(self.angle)
        out = np.empty(p.shape)
        out[..., 0] = a * p[..., 0] - b * p[..., 1] + self.tx
        out[..., 1] = b * p[..., 0] + a * p[..., 1] + self.ty
        return out

    def point(self, x: float, y: float) -> tuple[float, float]:
        """Map one point (plain floats: cheaper than :meth:`apply` for single points)."""
        a, b = self.scale * math.cos(self.angle), self.scale * math.sin(self.angle)
        return a * x - b * y + self.tx, b * x + a * y + self.ty

    def then(self, outer: Similarity) -> Similarity:
        """The map that applies ``self`` first and ``outer`` second."""
        tx, ty = outer.point(self.tx, self.ty)
        return Similarity(self.scale * outer.scale, self.angle + outer.angle, tx, ty)


def to_canvas(factor: int = SUPERSAMPLE) -> Similarity:
    """Image coordinates -> cv2 drawing coordinates (pixel centres at integers) of a canvas
    ``factor`` times larger; ``INTER_AREA`` by ``factor`` brings the canvas back exactly."""
    return Similarity(float(factor), 0.0, -0.5, -0.5)


def _fixed(value: float) -> int:
    return int(round(value * _FIXED))


class Painter:
    """Fills shapes given in model units into an image and, optionally, a coverage mask.

    The mask receives 255 wherever anything is drawn, so a figure can be composited later.
    """

    def __init__(self, image: np.ndarray, mask: np.ndarray | None, transform: Similarity) -> None:
        self.image = image
        self.mask = mask
        self.transform = transform

    def within(self, inner: Similarity) -> Painter:
        """A painter on the same canvas whose units are placed by ``inner`` in this one's units."""
        return Painter(self.image, self.mask, inner.then(self.transform))

    def _both(self, draw, colour: Colour) -> None:
        draw(self.image, colour)
        if self.mask is not None:
            draw(self.mask, 255)

    def _centre(self, centre) -> tuple[int, int]:
        x, y = self.transform.point(float(centre[0]), float(centre[1]))
        return _fixed(x), _fixed(y)

    def _axes(self, axes: tuple[float, float]) -> tuple[int, int]:
        return max(1, _fixed(axes[0] * self.transform.scale)), max(1, _fixed(axes[1] * self.transform.scale))

    def polygon(self, points: np.ndarray, colour: Colour) -> None:
        """Fill a polygon (any simple polygon) given as ``[n, 2]`` points."""
        if len(points) < 3:
            return
        pts = np.round(self.transform.apply(points) * _FIXED).astype(np.int32)
        self._both(lambda img, c: cv2.fillPoly(img, [pts], c, cv2.LINE_8, _SHIFT), colour)

    def ellipse(self, centre, axes: tuple[float, float], angle: float, colour: Colour) -> None:
        """Fill an ellipse; ``axes`` are half-lengths in model units, ``angle`` in radians."""
        c, ax = self._centre(centre), self._axes(axes)
        deg = math.degrees(angle + self.transform.angle)
        self._both(lambda img, col: cv2.ellipse(img, c, ax, deg, 0, 360, col, -1, cv2.LINE_8, _SHIFT),
                   colour)

    def circle(self, centre, radius: float, colour: Colour) -> None:
        """Fill a disc."""
        c, r = self._centre(centre), max(1, _fixed(radius * self.transform.scale))
        self._both(lambda img, col: cv2.circle(img, c, r, col, -1, cv2.LINE_8, _SHIFT), colour)

    def ring(self, centre, axes: tuple[float, float], width: float, colour: Colour) -> None:
        """Draw an axis-aligned ellipse outline (``axes`` are half-lengths) of the given line width,
        rounded to whole canvas pixels."""
        c, ax = self._centre(centre), self._axes(axes)
        deg = math.degrees(self.transform.angle)
        thickness = max(1, int(round(width * self.transform.scale)))
        self._both(lambda img, col: cv2.ellipse(img, c, ax, deg, 0, 360, col, thickness, cv2.LINE_8, _SHIFT),
                   colour)

    def limb(self, start, end, width_start: float, width_end: float, colour: Colour) -> None:
        """A tapered segment with round ends: a quadrilateral plus a disc at each end."""
        x0, y0 = self.transform.point(float(start[0]), float(start[1]))
        x1, y1 = self.transform.point(float(end[0]), float(end[1]))
        r0, r1 = width_start * self.transform.scale / 2, width_end * self.transform.scale / 2
        length = math.hypot(x1 - x0, y1 - y0)
        ends = ((_fixed(x0), _fixed(y0)), max(1, _fixed(r0))), ((_fixed(x1), _fixed(y1)), max(1, _fixed(r1)))
        quad = None
        if length > 1e-9:
            nx, ny = -(y1 - y0) / length, (x1 - x0) / length
            quad = np.array([[x0 + nx * r0, y0 + ny * r0], [x1 + nx * r1, y1 + ny * r1],
                             [x1 - nx * r1, y1 - ny * r1], [x0 - nx * r0, y0 - ny * r0]])
            quad = np.round(quad * _FIXED).astype(np.int32)

        def draw(img: np.ndarray, col) -> None:
            if quad is not None:
                cv2.fillConvexPoly(img, quad, col, cv2.LINE_8, _SHIFT)
            for c, r in ends:
                cv2.circle(img, c, r, col, -1, cv2.LINE_8, _SHIFT)

        self._both(draw, colour)

    def stroke(self, points: np.ndarray, width: float, colour: Colour) -> None:
        """A polyline of constant width with round joins."""
        for a, b in zip(points[:-1], points[1:]):
            self.limb(a, b, width, width, colour)


def ellipse_points(centre: tuple[float, float], axes: tuple[float, float], count: int = 32) -> np.ndarray:
    """``count`` points around an axis-aligned ellipse: a polygon that can then be clipped."""
    t = np.linspace(0.0, 2 * math.pi, count, endpoint=False)
    return np.stack([centre[0] + axes[0] * np.cos(t), centre[1] + axes[1] * np.sin(t)], axis=1)


def clip_half_plane(polygon: np.ndarray, normal: tuple[float, float], offset: float) -> np.ndarray:
    """The part of a polygon where ``normal . p <= offset`` (one Sutherland-Hodgman pass)."""
    nx, ny = normal
    points = [tuple(point) for point in np.asarray(polygon, dtype=float).tolist()]
    out = []
    for (px, py), (qx, qy) in zip(points, points[1:] + points[:1]):
        sp, sq = nx * px + ny * py - offset, nx * qx + ny * qy - offset
        if sp <= 0:
            out.append((px, py))
        if (sp <= 0) != (sq <= 0):
            t = sp / (sp - sq)
            out.append((px + (qx - px) * t, py + (qy - py) * t))
    return np.array(out, dtype=float).reshape(-1, 2)


def clip_band(polygon: np.ndarray, axis: int, low: float, high: float) -> np.ndarray:
    """The part of a polygon with ``low <= p[axis] <= high``."""
    normal = (1.0, 0.0) if axis == 0 else (0.0, 1.0)
    upper = clip_half_plane(polygon, normal, high)
    return clip_half_plane(upper, (-normal[0], -normal[1]), -low)


def as_colour(values) -> Colour:
    """Any three numbers (a palette tuple, a NumPy vector) as the float triple cv2 draws with."""
    return tuple(float(v) for v in values)


def shade(colour: Colour, factor: float) -> Colour:
    """``colour`` scaled by ``factor`` and kept in range: darker or lighter tones of one colour."""
    return tuple(float(min(255.0, max(0.0, c * factor))) for c in colour)
