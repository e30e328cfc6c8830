"""Independent random streams of the synthetic world.

Every random choice of the world is drawn from a generator seeded by ``(world seed, stream, keys)``,
so one identity's look does not depend on how many identities exist, and a camera's settings do not
depend on which images were rendered before.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """What a random stream is for; the value is part of the seed, so streams never collide."""

    BODY = 1
    FACE = 2
    CLOTHING = 3
    CAMERA = 4
    BACKGROUND = 5
    SCENE = 6
    MARKET = 7
    SYSU = 8
    FACES = 9
    SKIN = 10
    HAIR = 11


def stream(seed: int, kind: Stream, *keys: int) -> np.random.Generator:
    """The generator for ``kind`` and ``keys`` (non-negative integers) in the world ``seed``."""
    return np.random.default_rng([seed, int(kind), *keys])
