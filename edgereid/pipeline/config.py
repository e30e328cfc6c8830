"""What a pipeline runs: its models (ONNX files with cards, or engines), galleries, batching and queue
policy, and the cameras with their modality. Loaded from a dict or a YAML file; unknown keys are errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edgereid.config import build, check_ranges, load_yaml
from edgereid.errors import ConfigError
from edgereid.pipeline.batcher import DROP_POLICIES
from edgereid.pipeline.tracks import TrackReuse
from edgereid.runtime.backends import BACKENDS

MODALITIES = ("rgb", "ir")
# role in the config -> the task its model must serve
MODEL_ROLES = {"reid_model": "reid", "reid_ir_model": "reid", "keypoint_model": "keypoints", "face_model": "face"}


@dataclass(frozen=True)
class CameraConfig:
    """What a camera sees: ``rgb`` or ``ir`` (IR cameras use ``reid_ir_model`` when one is given), and the
    channel order of its frames: ``bgr`` (OpenCV's, the default) or ``rgb`` (converted at submit)."""

    modality: str = "rgb"
    color_order: str = "bgr"

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ConfigError("unknown camera modality", expected=str(MODALITIES), got=repr(self.modality))
        if self.color_order not in ("bgr", "rgb"):
            raise ConfigError("unknown camera color_order", expected="bgr or rgb", got=repr(self.color_order)[:40])


@dataclass(frozen=True)
class PipelineConfig:
    """Models (ONNX files with cards), galleries, batching and queue policy, cameras."""

    reid_model: str | None = None
    reid_ir_model: str | None = None  # requires reid_model; used for cameras declared ir
    keypoint_model: str | None = None
    face_model: str | None = None
    reid_gallery: str | None = None
    face_gallery: str | None = None
    min_face_size: int = 8  # px (shorter box side); smaller faces are skipped and flagged too_small
    max_batch: int = 32  # crops per model batch
    max_wait_ms: float = 10.0  # a partial batch is released after this long
    queue_size: int = 64  # frames waiting for the worker
    queue_megabytes: float = 1024.0  # the waiting frames' pixels, at most
    max_boxes_per_frame: int = 256  # person + face boxes of one submitted frame
    results_size: int = 1024  # finished results kept unread; beyond it, the oldest are dropped (counted)
    drop_policy: str = "block"
    backend: str = "auto"  # auto (by file suffix), onnxruntime, openvino, tensorrt or torch
    providers: tuple[str, ...] = ("CPUExecutionProvider",)  # ONNX Runtime providers
    threads: int | None = None
    precision: str | None = None  # OpenVINO: f32 or bf16 (None: bf16 for models that passed its gate)
    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    # with track ids submitted: when a tracked crop is embedded again (null: every crop, every frame)
    track_reuse: TrackReuse | None = field(default_factory=TrackReuse)

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "min_face_size": (1, 4096), "max_batch": (1, 4096), "max_wait_ms": (0.0, 60_000.0), "queue_size": (1, 100_000),
        "queue_megabytes": (1.0, 1 << 20), "max_boxes_per_frame": (1, 10_000), "results_size": (1, 1_000_000),
        "threads": (1, 1024)}

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.backend not in BACKENDS:
            raise ConfigError("unknown backend", expected=" | ".join(BACKENDS), got=repr(self.backend)[:40])
        if self.precision is not None and (self.backend != "openvino" or self.precision not in ("f32", "bf16")):
            raise ConfigError("precision is OpenVINO's inference precision", expected="f32 or bf16 with backend: openvino",
                              got=f"precision {self.precision!r} with backend {self.backend!r}"[:80],
                              fix="convert the model (edgereid convert) for other backends")
        if self.drop_policy not in DROP_POLICIES:
            raise ConfigError("unknown drop_policy", expected=str(DROP_POLICIES), got=repr(self.drop_policy))
        if not (self.reid_model or self.keypoint_model or self.face_model):
            raise ConfigError("the pipeline has no model", fix="set reid_model, keypoint_model or face_model")

    @classmethod
    def load(cls, source: "PipelineConfig | dict[str, Any] | str | Path") -> "PipelineConfig":
        """From a config object, a dict, or a YAML file; unknown keys are errors."""
        if isinstance(source, PipelineConfig):
            return source
        data = source if isinstance(source, dict) else load_yaml(source)
        return build(cls, data, "pipeline config")

    def modality(self, camera_id: str) -> str:
        """The declared modality of a camera (``rgb`` for cameras the config does not list)."""
        camera = self.cameras.get(camera_id)
        return camera.modality if camera else "rgb"
