"""Cameras of the synthetic world and what they do to the light that reaches them.

Each camera has its own exposure, colour cast, optics blur, sensor noise, JPEG quality and
resolution (a far camera is simulated by rendering small and upsampling), plus a preference for
which side of people it sees. An IR camera records an IR-like image in which clothing brightness
follows dye material (hue) rather than visible luminance.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import cv2
import numpy as np

from edgereid.data.seeding import Stream, stream
from edgereid.errors import InputError

MODALITIES = ("rgb", "ir", "sketch")
VIEWPOINTS = ("front", "back", "side")

# Standard normal quantiles of 256 equal-probability bins: noise from random bytes, 3x faster
# than drawing normals for a full frame.
_GAUSS_TABLE = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32)

# NIR reflectance of dyes by OpenCV hue (0..180): red and green dyes glow, blue ones stay dark.
_IR_HUE_ANCHORS = ((0, 0.85), (15, 0.8), (30, 0.6), (60, 0.75), (90, 0.45), (120, 0.3),
                   (150, 0.65), (180, 0.85))
_IR_HUE_LUT = np.interp(np.arange(181), *zip(*_IR_HUE_ANCHORS)).astype(np.float32)


@dataclass(frozen=True)
class Camera:
    """One camera: its imaging effects, viewpoint preference, modality and backdrop colours."""

    cam_id: int
    modality: str  # "rgb" or "ir"
    gain: float  # illumination / exposure multiplier
    colour_cast: tuple[float, float, float]  # per-channel (B, G, R) gains
    blur_sigma: float  # optics blur, pixels
    noise_sigma: float  # sensor noise, grey levels
    jpeg_quality: int
    resolution_scale: float  # < 1: imaged at this fraction of the size, then upsampled
    viewpoint_bias: tuple[float, float, float]  # probabilities of seeing front, back, side
    wall_colour: tuple[int, int, int]
    ground_colour: tuple[int, int, int]

    def sample_viewpoint(self, rng: np.random.Generator) -> str:
        """A viewpoint drawn from this camera's preference."""
        return VIEWPOINTS[int(rng.choice(3, p=np.asarray(self.viewpoint_bias)))]

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """What this camera records of a rendered BGR ``image``; keypoints are unchanged by it
        (the resolution round trip maps every pixel coordinate back onto itself)."""
        work = ir_intensity(image) if self.modality == "ir" else image
        gains = [self.gain] if work.ndim == 2 else [self.gain * c for c in self.colour_cast]
        levels = np.arange(256, dtype=np.float32)[:, None] * np.asarray(gains, np.float32)
        lut = np.clip(np.round(levels), 0, 255).astype(np.uint8).reshape(256, 1, len(gains))
        light = _round_trip_resolution(cv2.LUT(work, lut), self.resolution_scale)
        if self.blur_sigma > 0.05:
            light = cv2.GaussianBlur(light, (0, 0), self.blur_sigma)
        recorded = jpeg_roundtrip(add_noise(light, self.noise_sigma, rng), self.jpeg_quality)
        return recorded if recorded.ndim == 3 else cv2.merge([recorded] * 3)


ENTRANCE_VIEWPOINTS = (0.7, 0.1, 0.2)  # front, back, side


def make_camera(seed: int, cam_id: int, num_cameras: int) -> Camera:
    """Camera ``cam_id`` of the world ``seed``; the last of four or more cameras is IR.

    Camera 0 is the entrance camera: most people walk towards it, so it sees faces, and it is where
    galleries are enrolled. The others see people from random mixes of front, back and side.
    """
    rng = stream(seed, Stream.CAMERA, cam_id)
    ir = num_cameras >= 4 and cam_id == num_cameras - 1
    cast = (1.0, 1.0, 1.0) if ir else tuple(float(v) for v in rng.uniform(0.85, 1.15, 3))
    return Camera(
        cam_id=cam_id, modality="ir" if ir else "rgb", gain=float(rng.uniform(0.75, 1.25)),
        colour_cast=cast, blur_sigma=float(rng.uniform(0.0, 1.0)),
        noise_sigma=float(rng.uniform(1.0, 6.0)), jpeg_quality=int(rng.integers(60, 96)),
        resolution_scale=float(rng.uniform(0.45, 1.0)),
        viewpoint_bias=ENTRANCE_VIEWPOINTS if cam_id == 0 else tuple(float(v) for v in rng.dirichlet((2.0, 2.0, 2.0))),
        wall_colour=muted_colour(rng, 70, 190), ground_colour=muted_colour(rng, 70, 190))


def muted_colour(rng: np.random.Generator, low: float, high: float) -> tuple[int, int, int]:
    """A greyish BGR colour (brightness between ``low`` and ``high``, a little chroma), as most
    walls, pavements and street furniture are."""
    grey = rng.uniform(low, high)
    return tuple(int(v) for v in np.clip(grey + rng.uniform(-30.0, 30.0, 3), 0, 255))


def _round_trip_resolution(image: np.ndarray, scale: float) -> np.ndarray:
    """Image at ``scale`` of its size, brought back up: the detail of a farther camera."""
    if scale >= 0.999:
        return image
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` (uint8) plus Gaussian noise of standard deviation ``sigma``, rounded and clipped.

    The noise is looked up from random bytes and stored offset by 128 in uint8, so one
    saturating ``addWeighted`` applies it: several times faster than float arithmetic on frames.
    """
    offsets = np.clip(np.round(128.0 + sigma * _GAUSS_TABLE), 0, 255).astype(np.uint8)
    noise = cv2.LUT(rng.integers(0, 256, image.shape, dtype=np.uint8), offsets)
    return cv2.addWeighted(image, 1.0, noise, 1.0, -128.0)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (uint8, grey or BGR) after JPEG compression at ``quality``."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError("OpenCV could not JPEG-encode an image", expected="uint8 grey or BGR image",
                         got=f"{image.dtype} array of shape {image.shape}")
    flag = cv2.IMREAD_GRAYSCALE if image.ndim == 2 else cv2.IMREAD_COLOR
    return cv2.imdecode(data, flag)


def ir_intensity(image: np.ndarray) -> np.ndarray:
    """Single-channel IR-like intensity of a BGR image (uint8 ``[H, W]``).

    Grey and dark fabrics are lifted towards mid-grey; saturated dyes take the reflectance of
    their hue, so a red and a blue top of equal visible brightness differ strongly in IR.
    """
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    material = _IR_HUE_LUT[hsv[..., 0]]
    sat, val = hsv[..., 1] * np.float32(1 / 255), hsv[..., 2] * np.float32(1 / 255)
    neutral = 0.1 + 0.85 * val
    dyed = (0.2 + 0.8 * material) * (0.4 + 0.6 * val)
    return np.clip(((1.0 - sat) * neutral + sat * dyed) * 255.0, 0, 255).astype(np.uint8)


def sketch_lines(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Line art of a BGR image: dark edges on white (uint8 ``[H, W]``), line weight varying.

    Edges are found in every colour channel, so a boundary between colours of equal brightness
    (pink skin on a pale wall) is still drawn.
    """
    smooth = cv2.GaussianBlur(image, (0, 0), 0.7)
    low = float(rng.uniform(25.0, 45.0))
    edges = np.zeros(image.shape[:2], np.uint8)
    for channel in cv2.split(smooth):
        edges |= cv2.Canny(channel, low, low * 2.5)
    if min(image.shape[:2]) >= 192 and rng.random() < 0.5:
        edges = cv2.dilate(edges, np.ones((2, 2), np.uint8))
    return 255 - edges


def to_modality(image: np.ndarray, modality: str, rng: np.random.Generator) -> np.ndarray:
    """``image`` (BGR uint8) as seen in ``modality``: "rgb" (a copy), "ir" or "sketch", both
    replicated to three channels so every modality has the same shape."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError("to_modality needs a BGR image", expected="uint8 array [H, W, 3]",
                         got=f"{image.dtype} array of shape {image.shape}")
    if modality == "rgb":
        return image.copy()
    if modality == "ir":
        return cv2.merge([ir_intensity(image)] * 3)
    if modality == "sketch":
        return cv2.merge([sketch_lines(image, rng)] * 3)
    raise InputError(f"unknown modality {modality!r}", expected=" or ".join(MODALITIES),
                     got=repr(modality), fix="use one of the listed modalities")
