"""How each picture of a face differs (:class:`FaceVariation`): expression, head turn and roll, light,
and the colours of the head under that light. Drawn by :mod:`edgereid.data.faces`; every photo of a
person draws a new variation, as real photos differ."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edgereid.data.appearance import CLOTHING_COLOURS, HAIR_COLOURS, SKIN_TONES, Attributes
from edgereid.data.painter import Colour, as_colour, shade

_MAX_YAW = math.radians(25.0)
_SHADOW_SOFTNESS = 0.3  # face units between the half and the full shadow

@dataclass(frozen=True)


class Expression:
    """Per-sample facial expression, one part of a :class:`FaceVariation`."""
    smile: float = 0.0  # -0.3 (frown) .. 1 (smile): mouth corners move up
    mouth_open: float = 0.0  # 0 .. 0.5
    eye_open: float = 1.0  # 0.4 .. 1


def random_expression(rng: np.random.Generator) -> Expression:
    """A plausible expression: mostly neutral-to-smiling, sometimes talking or blinking."""
    return Expression(smile=float(rng.uniform(-0.3, 1.0)),
                      mouth_open=float(rng.uniform(0.0, 0.5)) if rng.random() < 0.3 else 0.0,
                      eye_open=float(rng.uniform(0.4, 1.0)) if rng.random() < 0.2 else 1.0)

@dataclass(frozen=True)


class Light:
    """How a face is lit in one picture: exposure and white balance, and a shadow on one side.

    The shadow darkens everything beyond a line across the face, in two steps (half, then full
    ``strength``) so that its edge looks soft once drawn small.
    """
    gains: Colour = (1.0, 1.0, 1.0)  # per-channel (B, G, R): exposure times white balance
    shadow: tuple[float, float] = (1.0, 0.0)  # unit direction, face units, in which it gets darker
    edge: float = 0.0  # where the shadow starts along ``shadow``, face units
    strength: float = 0.0  # 0 (no shadow) .. 0.35: darkening of the fully shadowed part

    def bands(self) -> tuple[tuple[float, float], ...]:
        """``(start, brightness)`` of the half and the full shadow along ``shadow``; none when
        there is no shadow."""
        if self.strength <= 0.0:
            return ()
        return ((self.edge, 1.0 - 0.5 * self.strength),
                (self.edge + _SHADOW_SOFTNESS, 1.0 - self.strength))

    def brightness(self, point) -> float:
        """The light's brightness factor (1 outside the shadow) at ``point`` (face units)."""
        along = self.shadow[0] * float(point[0]) + self.shadow[1] * float(point[1])
        return min([1.0] + [level for start, level in self.bands() if along >= start])


def random_light(rng: np.random.Generator) -> Light:
    """Exposure and white balance of one picture, and a shadow falling mostly sideways or down
    (light from one side or above), sometimes hardly any."""
    exposure = float(np.exp(np.clip(rng.normal(0.0, 0.2), -0.5, 0.4)))
    angle = float(rng.uniform(-math.pi / 6, 7 * math.pi / 6))
    return Light(gains=as_colour(exposure * rng.uniform(0.85, 1.15, 3)),
                 shadow=(math.cos(angle), math.sin(angle)), edge=float(rng.uniform(-0.5, 0.3)),
                 strength=float(rng.uniform(0.0, 0.35)))

@dataclass(frozen=True)


class FaceVariation:
    """What differs between two pictures of one face; the identity's structure stays."""
    expression: Expression = field(default_factory=Expression)
    yaw: float = 0.0  # head turn, radians, up to +-25 deg: positive turns the face to the image right
    roll: float = 0.0  # head tilt, radians, clockwise on screen
    light: Light = field(default_factory=Light)
    fringe: float = 0.0  # hair fallen over the forehead: 0 none .. 1 down to the brows
    fringe_slant: float = 0.0  # radians: the fringe's lower edge is tilted, not level
    hat: Colour | None = None  # a hat worn for this picture (a hat wearer always wears theirs)
    hat_depth: float = 0.0  # how far a hat is pulled down: 0 high .. 1 down to the brows


def random_face_variation(rng: np.random.Generator) -> FaceVariation:
    """A random picture's expression, head pose, light, and hair or hat over the forehead."""
    fringe = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.3 else 0.0
    hats = list(CLOTHING_COLOURS.values())
    hat = as_colour(hats[int(rng.integers(len(hats)))]) if rng.random() < 0.15 else None
    return FaceVariation(expression=random_expression(rng),
                         yaw=float(np.clip(rng.normal(0.0, 0.4 * _MAX_YAW), -_MAX_YAW, _MAX_YAW)),
                         roll=float(np.clip(rng.normal(0.0, 0.08), -0.2, 0.2)),
                         light=random_light(rng), fringe=fringe,
                         fringe_slant=float(rng.uniform(-0.35, 0.35)), hat=hat,
                         hat_depth=float(rng.uniform(0.0, 0.6)))

@dataclass(frozen=True)


class HeadColours:
    """The colours a head is drawn with in one picture, resolved from an identity's attribute
    names."""
    skin: Colour
    hair: Colour
    lips: Colour
    brows: Colour


def head_colours(attributes: Attributes, light: Light) -> HeadColours:
    """Skin, hair, lip and brow colours of an identity, under ``light``'s exposure and white
    balance."""
    skin = tint(as_colour(SKIN_TONES[attributes.skin_tone]), light)
    hair = tint(as_colour(HAIR_COLOURS[attributes.hair_colour]), light)
    lips = (skin[0] * 0.7, skin[1] * 0.65, min(255.0, skin[2] * 0.95))
    return HeadColours(skin=skin, hair=hair, lips=lips, brows=shade(hair, 0.7))


def tint(colour: Colour, light: Light) -> Colour:
    """``colour`` under ``light``'s exposure and white balance."""
    return tuple(float(min(255.0, c * g)) for c, g in zip(colour, light.gains))
