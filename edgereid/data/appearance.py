"""Who the people of the synthetic world are: clothing, body shape, face, and a sentence about them.

Identity must rest on combinations, never on one colour. Clothing colours are therefore dealt in
balanced blocks: within every block of ``len(CLOTHING_COLOURS)`` consecutive identities each colour
is worn once as a top and once as a bottom, so every colour is shared by several people, and
pattern, accessory, shoes, hair, body shape and face tell them apart. Skin tones and hair colours
come from small palettes dealt the same way, as among real people many share both: a face is told
apart by its structure (shape, feature sizes and spacing, brows, nose, hair style, glasses, beard).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgereid.data.seeding import Stream, stream

BGR = tuple[int, int, int]

CLOTHING_COLOURS: dict[str, BGR] = {
    "red": (40, 40, 200), "blue": (170, 90, 30), "green": (60, 140, 50), "yellow": (40, 200, 230),
    "black": (40, 38, 36), "white": (230, 230, 228), "grey": (125, 125, 125), "purple": (130, 50, 120),
}
SHOE_COLOURS: dict[str, BGR] = {
    "black": (30, 30, 30), "white": (235, 235, 235), "brown": (40, 70, 110), "grey": (110, 110, 115),
}
HAIR_COLOURS: dict[str, BGR] = {
    "black": (25, 25, 30), "brown": (35, 60, 95), "blond": (100, 170, 215), "grey": (150, 150, 155),
}
SKIN_TONES: tuple[BGR, ...] = ((180, 200, 240), (140, 170, 215), (100, 130, 180), (65, 85, 125))
PATTERNS = ("plain", "stripes", "checks", "logo")
ACCESSORIES = ("none", "backpack", "bag", "hat")
UPPER_STYLES = ("jacket", "t-shirt")  # long and short sleeves
LOWER_STYLES = ("trousers", "shorts", "skirt")
HAIR_STYLES = ("short", "long", "bald", "fringe", "bun")


@dataclass(frozen=True)
class BodyShape:
    """Body proportions, as multipliers around an average person (1.0)."""

    height: float  # stature: 0.86 .. 1.0 of the tallest person
    shoulder_width: float  # 0.85 .. 1.2
    limb_thickness: float  # 0.8 .. 1.25
    stride: float  # gait swing amplitude: 0.8 .. 1.2


@dataclass(frozen=True)
class Attributes:
    """What a person wears and looks like, by name (colours are keys of the palettes above)."""

    upper_colour: str
    upper_style: str
    pattern: str
    pattern_colour: str
    lower_colour: str
    lower_style: str
    shoe_colour: str
    accessory: str
    accessory_colour: str
    hair_colour: str
    skin_tone: int
    body: BodyShape


@dataclass(frozen=True)
class FaceParams:
    """Face geometry in face units (the average face is 2 wide), identity-specific and fixed."""

    width: float  # half-width of the face outline: 0.9 .. 1.1
    length: float  # half-height / half-width: 1.15 .. 1.4
    jaw: float  # width of the lower face relative to the cheeks: 0.65 .. 0.95
    eye_spacing: float  # half the distance between the eyes: 0.36 .. 0.5
    eye_size: float  # 0.08 .. 0.13
    eye_height: float  # eye line: -0.3 .. -0.14 (negative is up)
    brow_gap: float  # eye to brow: 0.14 .. 0.24
    brow_thickness: float  # 0.04 .. 0.1
    brow_slant: float  # outer end raised by: -0.06 .. 0.08
    nose_length: float  # eye line to nose tip: 0.3 .. 0.5
    nose_width: float  # 0.1 .. 0.24
    mouth_width: float  # half-width: 0.26 .. 0.45
    mouth_height: float  # mouth line below the eyes: 0.55 .. 0.8 (from the eye line)
    lip_thickness: float  # 0.05 .. 0.11
    hair_style: str
    glasses: bool
    beard: bool


@dataclass(frozen=True)
class Identity:
    """One person of the world: ``pid`` (1-based, as in Market-1501), looks, face and a caption."""

    pid: int
    attributes: Attributes
    face: FaceParams
    text: str


def make_identity(seed: int, pid: int) -> Identity:
    """The identity ``pid`` of the world ``seed``; independent of how many identities exist."""
    attributes = _sample_attributes(seed, pid)
    face = _sample_face(stream(seed, Stream.FACE, pid))
    return Identity(pid=pid, attributes=attributes, face=face, text=describe(attributes, face))


def _deal(seed: int, kind: Stream, pid: int, count: int) -> tuple[np.ndarray, int, np.random.Generator]:
    """A balanced deal of ``count`` options: the shuffled ``order`` of the options for the block of
    ``count`` consecutive identities that holds ``pid``, ``pid``'s slot in it, and the block's
    generator for further choices. Every option goes to exactly one identity of each block."""
    block, slot = divmod(pid - 1, count)
    rng = stream(seed, kind, block)
    return rng.permutation(count), slot, rng


def clothing_colours(seed: int, pid: int) -> tuple[str, str]:
    """(upper, lower) colour names of ``pid``, dealt in balanced blocks (see the module text)."""
    names = list(CLOTHING_COLOURS)
    order, slot, rng = _deal(seed, Stream.CLOTHING, pid, len(names))
    shift = int(rng.integers(1, len(names)))
    return names[order[slot]], names[order[(slot + shift) % len(names)]]


def skin_and_hair(seed: int, pid: int) -> tuple[int, str]:
    """(skin tone index, hair colour name) of ``pid``, each dealt in balanced blocks, so that every
    tone and every hair colour is shared by several identities."""
    def dealt(kind: Stream, count: int) -> int:
        order, slot, _ = _deal(seed, kind, pid, count)
        return int(order[slot])

    return dealt(Stream.SKIN, len(SKIN_TONES)), list(HAIR_COLOURS)[dealt(Stream.HAIR, len(HAIR_COLOURS))]


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _other_colour(rng: np.random.Generator, *taken: str) -> str:
    return _pick(rng, [name for name in CLOTHING_COLOURS if name not in taken])


def _sample_attributes(seed: int, pid: int) -> Attributes:
    rng = stream(seed, Stream.BODY, pid)
    upper, lower = clothing_colours(seed, pid)
    skin_tone, hair_colour = skin_and_hair(seed, pid)
    body = BodyShape(height=float(rng.uniform(0.86, 1.0)),
                     shoulder_width=float(rng.uniform(0.85, 1.2)),
                     limb_thickness=float(rng.uniform(0.8, 1.25)),
                     stride=float(rng.uniform(0.8, 1.2)))
    return Attributes(
        upper_colour=upper, upper_style=_pick(rng, UPPER_STYLES),
        pattern=_pick(rng, PATTERNS), pattern_colour=_other_colour(rng, upper),
        lower_colour=lower, lower_style=_pick(rng, LOWER_STYLES),
        shoe_colour=_pick(rng, list(SHOE_COLOURS)),
        accessory=_pick(rng, ACCESSORIES), accessory_colour=_other_colour(rng, upper, lower),
        hair_colour=hair_colour, skin_tone=skin_tone, body=body)


def _sample_face(rng: np.random.Generator) -> FaceParams:
    def u(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    return FaceParams(
        width=u(0.9, 1.1), length=u(1.15, 1.4), jaw=u(0.65, 0.95),
        eye_spacing=u(0.36, 0.5), eye_size=u(0.08, 0.13), eye_height=u(-0.3, -0.14),
        brow_gap=u(0.14, 0.24), brow_thickness=u(0.04, 0.1), brow_slant=u(-0.06, 0.08),
        nose_length=u(0.3, 0.5), nose_width=u(0.1, 0.24),
        mouth_width=u(0.26, 0.45), mouth_height=u(0.55, 0.8), lip_thickness=u(0.05, 0.11),
        hair_style=_pick(rng, HAIR_STYLES), glasses=bool(rng.random() < 0.25),
        beard=bool(rng.random() < 0.3))


def describe(attributes: Attributes, face: FaceParams) -> str:
    """A caption such as "a tall person with short black hair, wearing a red jacket with white
    stripes, blue trousers and black shoes, with a backpack" (for text-conditioned models)."""
    a = attributes
    return (f"{_stature(a.body)} {_head_phrase(a, face)}, wearing {_top_phrase(a)}, "
            f"{a.lower_colour} {a.lower_style} and {a.shoe_colour} shoes{_accessory_phrase(a)}")


def _stature(body: BodyShape) -> str:
    words = []
    if body.height > 0.95:
        words.append("tall")
    elif body.height < 0.91:
        words.append("short")
    if body.shoulder_width > 1.1:
        words.append("broad-shouldered")
    elif body.shoulder_width < 0.95:
        words.append("slim")
    return " ".join(["a", *words, "person"])


def _head_phrase(a: Attributes, face: FaceParams) -> str:
    hair = {"bald": "a bald head", "fringe": f"{a.hair_colour} hair with a fringe",
            "bun": f"{a.hair_colour} hair in a bun"}.get(face.hair_style,
                                                       f"{face.hair_style} {a.hair_colour} hair")
    items = [hair] + [word for word, present in (("glasses", face.glasses), ("a beard", face.beard))
                      if present]
    if len(items) == 1:
        return f"with {hair}"
    return "with " + ", ".join(items[:-1]) + " and " + items[-1]


def _top_phrase(a: Attributes) -> str:
    top = f"{a.upper_colour} {a.upper_style}"
    if a.pattern == "stripes":
        return f"a {top} with {a.pattern_colour} stripes"
    if a.pattern == "checks":
        return f"a {a.upper_colour} and {a.pattern_colour} checked {a.upper_style}"
    if a.pattern == "logo":
        return f"a {top} with a {a.pattern_colour} logo"
    return f"a {top}"


def _accessory_phrase(a: Attributes) -> str:
    return {
        "none": "",
        "backpack": f", with a {a.accessory_colour} backpack",
        "bag": f", carrying a {a.accessory_colour} bag",
        "hat": f", and a {a.accessory_colour} hat",
    }[a.accessory]
