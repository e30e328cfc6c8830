"""The model card: what a model file declares about itself.

The runtime never guesses preprocessing from shapes or node names. Everything needed to feed a
model and read its outputs (input size, layout, colour order, mean/std, resize policy, output
kinds, embedding size, keypoint read-out, accept thresholds) and where it came from (provenance)
lives in a :class:`ModelCard`, embedded in the ONNX file's metadata under :data:`CARD_METADATA_KEY`
and copied into engine sidecars, checkpoints and gallery files.

This module imports only the standard library and NumPy-free code so that any layer can use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgereid.errors import ModelCardError
from edgereid.ort_session import open_session

SCHEMA_VERSION = 2  # 2: input layout, dtype uint8, channels, normalize; keypoint decoders
CARD_METADATA_KEY = "edgereid.card"
# which runtime an INT8 graph's Q/DQ form was made for ("tensorrt" or "cpu"; see edgereid.exporting.int8)
INT8_TARGET_METADATA_KEY = "edgereid.int8_target"
# "passed" when `edgereid convert --precision bf16` found the model accurate under BF16 rounding; the OpenVINO
# backend then runs it with its BF16 hint by default
BF16_GATE_METADATA_KEY = "edgereid.bf16_gate"

TASKS = ("reid", "keypoints", "face")
RESIZE_POLICIES = ("stretch", "letterbox")
LAYOUTS = ("NCHW", "NHWC")
INPUT_DTYPES = ("float32", "float16", "uint8")
NORMALIZATIONS = ("per-channel", "scalar", "none")
# arcface: the 112-px ArcFace template scaled to the input; insightface: InsightFace's estimate_norm (sizes that
# are multiples of 112 scale the template, others scale it by size/128 and shift it 8 px right per 128)
FACE_TEMPLATES = ("arcface", "insightface")
# Budgets a card may declare: a crop side, and the values one output holds per crop.
MAX_INPUT_SIDE = 4096
MAX_OUTPUT_VALUES = 1 << 22
COLOR_ORDERS = ("RGB", "BGR")
OUTPUT_KINDS = ("embedding", "heatmaps", "coords", "confidence", "simcc_x", "simcc_y")
# how a keypoint model's outputs become points: in the graph (edgereid's own), raw heatmaps (MSRA or UDP), SimCC
KEYPOINT_DECODERS = {"coords": ("coords", "confidence"), "heatmap": ("heatmaps",), "heatmap_udp": ("heatmaps",),
                     "simcc": ("simcc_x", "simcc_y")}

COCO17_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ModelCardError(f"invalid {what} in model card", expected=f"one of {choices}",
                             got=repr(value), fix="correct the card (edgereid card show FILE)")


def _from_mapping(cls, data: Any, where: str):
    """Build dataclass ``cls`` from a dict, refusing unknown or missing keys."""
    if not isinstance(data, dict):
        raise ModelCardError(f"card section '{where}' is not a mapping", got=type(data).__name__)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ModelCardError(f"unknown keys in card section '{where}'", expected=str(sorted(names)),
                             got=str(unknown), fix="the card was written by a newer edgereid; upgrade")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ModelCardError(f"card section '{where}' is incomplete: {exc}") from exc


@dataclass(frozen=True)
class InputSpec:
    """How crops are fed to the model. ``mean``/``std`` are in 0–255 pixel units, in colour order. Faces with
    landmarks are aligned onto ``face_template`` (or the 5 ``face_points``) at the input size.

    ``layout`` NCHW or NHWC; ``dtype`` float32, float16 or uint8; ``channels`` 3 (in ``color_order``) or 1
    (grey, BT.601 luma of the BGR crop); ``normalize`` ``per-channel`` ((pixel - mean[c]) / std[c]), ``scalar``
    (mean[0] and std[0] for every channel) or ``none`` (raw 0-255 pixels: the graph normalises itself, as
    models with folded normalisation and uint8 inputs do)."""

    name: str = "input"
    height: int = 256
    width: int = 128
    layout: str = "NCHW"
    dtype: str = "float32"
    color_order: str = "RGB"
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    resize: str = "stretch"
    channels: int = 3
    normalize: str = "per-channel"
    face_template: str = "arcface"  # FACE_TEMPLATES: where aligned faces put their 5 landmarks
    face_points: tuple[tuple[float, float], ...] = ()  # 5 custom (x, y) in input pixels; overrides the template

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        _check_choice("resize policy", self.resize, RESIZE_POLICIES)
        _check_choice("colour order", self.color_order, COLOR_ORDERS)
        _check_choice("layout", self.layout, LAYOUTS)
        _check_choice("input dtype", self.dtype, INPUT_DTYPES)
        _check_choice("normalisation", self.normalize, NORMALIZATIONS)
        _check_choice("face template", self.face_template, FACE_TEMPLATES)
        object.__setattr__(self, "face_points", tuple(tuple(float(v) for v in p) for p in self.face_points))
        if self.face_points and (len(self.face_points) != 5 or any(len(p) != 2 for p in self.face_points)):
            raise ModelCardError("face_points are 5 (x, y) points", got=str(self.face_points)[:80])
        if self.channels not in (1, 3):
            raise ModelCardError("input channels must be 1 or 3", got=repr(self.channels)[:20])
        if self.dtype == "uint8" and self.normalize != "none":
            raise ModelCardError("a uint8 input takes raw pixels", expected="normalize: none",
                                 got=f"normalize: {self.normalize}", fix="the graph normalises; say normalize none")
        if not all(isinstance(side, int) and 0 < side <= MAX_INPUT_SIDE for side in (self.height, self.width)):
            raise ModelCardError("input size out of range", expected=f"whole pixels, 1 to {MAX_INPUT_SIDE} per side",
                                 got=f"{self.height!r:.20}x{self.width!r:.20}")
        if not all(math.isfinite(v) for v in self.mean + self.std):
            raise ModelCardError("mean and std must be finite", got=f"mean={self.mean} std={self.std}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ModelCardError("mean and std need 3 values each, std > 0",
                                 got=f"mean={self.mean} std={self.std}")

    def batch_shape(self, batch: int | None) -> tuple[int | None, ...]:
        """The model input's shape for ``batch`` crops, in the card's layout."""
        if self.layout == "NHWC":
            return (batch, self.height, self.width, self.channels)
        return (batch, self.channels, self.height, self.width)

    def channel_first(self, batch: Any) -> Any:
        """A ``[C, N, H, W]`` view of a batch array in the card's layout (what the arithmetic writes into)."""
        return batch.transpose(3, 0, 1, 2) if self.layout == "NHWC" else batch.transpose(1, 0, 2, 3)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` per model channel as the normalisation applies them (none: 0 and 1)."""
        if self.normalize == "none":
            return (0.0,) * self.channels, (1.0,) * self.channels
        if self.normalize == "scalar" or self.channels == 1:
            return (self.mean[0],) * self.channels, (self.std[0],) * self.channels
        return self.mean, self.std


@dataclass(frozen=True)
class OutputSpec:
    """One graph output: its name, what it holds, and its shape without the batch axis."""

    name: str
    kind: str
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))
        _check_choice("output kind", self.kind, OUTPUT_KINDS)
        if len(self.dims) > 4 or any(d < 1 for d in self.dims) or math.prod(self.dims) > MAX_OUTPUT_VALUES:
            raise ModelCardError(f"output '{self.name:.40}' has out-of-range dims",
                                 expected=f"1 to 4 positive dims, at most {MAX_OUTPUT_VALUES} values per crop",
                                 got=str(self.dims)[:80])


@dataclass(frozen=True)
class Provenance:
    """Where the weights came from; the checkpoint hash identifies the embedding space."""

    checkpoint_sha256: str = ""
    config_fingerprint: str = ""
    edgereid_version: str = ""
    source: str = ""


@dataclass(frozen=True)
class KeypointReadout:
    """Linear map from K unsupervised points (centred, flattened x,y) to M named joints."""

    matrix: tuple[tuple[float, ...], ...]
    joint_names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix", tuple(tuple(float(v) for v in row) for row in self.matrix))
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        if len(self.matrix) != 2 * len(self.joint_names):
            raise ModelCardError("read-out matrix must have 2 rows per joint",
                                 expected=f"{2 * len(self.joint_names)} rows", got=f"{len(self.matrix)}")


@dataclass(frozen=True)
class AcceptThreshold:
    """Cosine score above which a match is accepted, and the false-accept rate it was chosen for."""

    score: float
    far: float


@dataclass(frozen=True)
class ModelCard:
    """Everything the runtime must know about a model; see the module docstring."""

    name: str
    task: str
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    embedding_dim: int = 0
    joint_names: tuple[str, ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    readout: KeypointReadout | None = None
    accept_threshold: AcceptThreshold | None = None
    provenance: Provenance = field(default_factory=Provenance)
    schema_version: int = SCHEMA_VERSION
    keypoint_decode: str = "coords"  # KEYPOINT_DECODERS: how keypoint outputs become points
    simcc_split_ratio: float = 2.0  # SimCC bins per input pixel (RTMPose's)

    def __post_init__(self) -> None:
        _check_choice("task", self.task, TASKS)
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "skeleton", tuple(tuple(int(i) for i in e) for e in self.skeleton))
        if self.schema_version > SCHEMA_VERSION:
            raise ModelCardError("model card schema is newer than this edgereid understands",
                                 expected=f"schema_version <= {SCHEMA_VERSION}",
                                 got=str(self.schema_version), fix="upgrade edgereid")
        kinds = [o.kind for o in self.outputs]
        if self.task in ("reid", "face") and "embedding" not in kinds:
            raise ModelCardError(f"a {self.task} card needs an 'embedding' output", got=str(kinds))
        _check_choice("keypoint decoder", self.keypoint_decode, tuple(KEYPOINT_DECODERS))
        needed = KEYPOINT_DECODERS[self.keypoint_decode]
        if self.task == "keypoints" and not set(needed) <= set(kinds):
            raise ModelCardError(f"a keypoints card decoded by '{self.keypoint_decode}' needs outputs {list(needed)}",
                                 got=str(kinds))
        if not (isinstance(self.simcc_split_ratio, (int, float)) and 0 < self.simcc_split_ratio <= 64):
            raise ModelCardError("simcc_split_ratio out of range", expected="0 < ratio <= 64",
                                 got=repr(self.simcc_split_ratio)[:20])
        if self.task == "keypoints" and self.readout is not None:
            k = self.keypoint_count()
            columns = sorted({len(row) for row in self.readout.matrix})
            if columns != [2 * k]:
                raise ModelCardError("read-out matrix needs 2 columns per model keypoint",
                                     expected=f"{2 * k} columns (K={k})", got=f"{columns}",
                                     fix="refit it with `edgereid keypoints readout` for this model")

    def keypoint_count(self) -> int:
        """K, the keypoints a keypoint model gives (from the first output its decoder reads)."""
        return self.output(KEYPOINT_DECODERS[self.keypoint_decode][0]).dims[0]

    def output(self, kind: str) -> OutputSpec:
        """The first output of ``kind``."""
        for spec in self.outputs:
            if spec.kind == kind:
                return spec
        raise ModelCardError(f"model '{self.name}' has no '{kind}' output",
                             got=str([o.kind for o in self.outputs]))

    def embedding_space(self) -> str:
        """A fingerprint of the embedding space: vectors are comparable only within one space."""
        key = json.dumps([self.name, self.task, self.embedding_dim,
                          self.provenance.checkpoint_sha256, dataclasses.asdict(self.input)])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> "ModelCard":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> "ModelCard":
        """A card from its JSON form. The data comes from a file, so any malformed field (a wrong type, a
        null where a list belongs) is a :class:`ModelCardError`, never a TypeError from deep inside."""
        if not isinstance(data, dict):
            raise ModelCardError("model card is not a JSON object", got=type(data).__name__)
        try:
            return cls._parse(dict(data))
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
            raise ModelCardError("model card has a malformed field", got=f"{type(exc).__name__}: {str(exc)[:160]}",
                                 fix="re-export the model, or re-attach its card with edgereid card attach") from exc

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> "ModelCard":
        data["input"] = _from_mapping(InputSpec, data.get("input", {}), "input")
        data["outputs"] = tuple(_from_mapping(OutputSpec, o, "outputs") for o in data.get("outputs", ()))
        data["provenance"] = _from_mapping(Provenance, data.get("provenance", {}), "provenance")
        if data.get("readout") is not None:
            data["readout"] = _from_mapping(KeypointReadout, data["readout"], "readout")
        if data.get("accept_threshold") is not None:
            data["accept_threshold"] = _from_mapping(AcceptThreshold, data["accept_threshold"],
                                                     "accept_threshold")
        card = _from_mapping(cls, data, "card")
        if not isinstance(card.name, str) or not isinstance(card.embedding_dim, int) or card.embedding_dim < 0:
            raise ModelCardError("model card has a malformed name or embedding_dim",
                                 got=f"{card.name!r:.40} / {card.embedding_dim!r:.20}")
        return card

    @classmethod
    def from_json(cls, text: str) -> "ModelCard":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelCardError("model card is not valid JSON", got=str(exc)) from exc
        return cls.from_dict(data)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(onnx_path: str | Path) -> ModelCard:
    """The card embedded in an ONNX file; needs only onnxruntime."""
    path = Path(onnx_path)
    session = open_session(path, error=ModelCardError, optimize=False)
    return card_from_metadata(session.get_modelmeta().custom_metadata_map, str(path))


def card_from_metadata(metadata: dict[str, str], where: str) -> ModelCard:
    """Parse the card from an ONNX metadata map, with an actionable error when it is absent."""
    text = metadata.get(CARD_METADATA_KEY)
    if text is None:
        raise ModelCardError(
            f"{where} carries no edgereid model card",
            expected=f"ONNX metadata key '{CARD_METADATA_KEY}'",
            got=f"metadata keys {sorted(metadata)}",
            fix=f"attach one: edgereid card attach {where} --task reid --height H --width W ...",
        )
    return ModelCard.from_json(text)


def write_card(onnx_path: str | Path, card: ModelCard, out_path: str | Path | None = None) -> Path:
    """Embed ``card`` in an ONNX file's metadata, written atomically (needs the ``onnx`` package)."""
    from edgereid.errors import require
    from edgereid.fileio import atomic_write_bytes

    onnx = require("onnx", "export", "writing a model card into an ONNX file")
    model = onnx.load(str(onnx_path))
    set_card_metadata(model, card)
    target = Path(out_path or onnx_path)
    atomic_write_bytes(target, model.SerializeToString())
    return target


def set_card_metadata(model: Any, card: ModelCard) -> None:
    """Set (replace) the card entry of an in-memory ``onnx.ModelProto``."""
    for prop in list(model.metadata_props):
        if prop.key == CARD_METADATA_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key = CARD_METADATA_KEY
    entry.value = card.to_json()
