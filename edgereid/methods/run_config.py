"""The header every training run config shares, and its one loader.

A run config is a YAML file read into a frozen dataclass (unknown keys are errors). Every run names its
``method``, its output folder ``out``, the optimiser ``optim``, ``batch_size`` and whether to ``export``
ONNX at the end (:class:`RunConfig`). ``edgereid train`` configs name what they train ``model`` /
``model_args`` (:class:`TrainRun`); ``edgereid distill`` configs name the ``student`` / ``student_args``
they train and, where a teacher runs during distillation, the ``teacher`` (:class:`DistillRun`).
Distillation configs written with the old keys ``model`` / ``model_args`` still load, with a
deprecation message saying what to rename. Imports no torch.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from edgereid.config import apply_overrides, build, check_ranges, load_yaml
from edgereid.errors import ConfigError

R = TypeVar("R", bound="RunConfig")


OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "multistep")


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule: AdamW (or Adam, or SGD with ``momentum``, the face papers' choice), linear warm-up
    from ``lr * warmup_start``, then cosine decay to ``lr * final_lr_fraction`` or (``schedule: multistep``)
    ``lr * gamma`` at each of the ``milestones`` epochs; ``mixed_precision``: autocast, FP16 with a gradient
    scaler on CUDA, BF16 on a CPU; ``prefetch``: batches prepared ahead on a loader thread (indexing, augmentation,
    normalisation and pinning overlap the model's step, what DataLoader workers do; 0 prepares each inline; the
    run is the same either way)."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "epochs": (0, 100_000), "lr": (0.0, 10.0), "weight_decay": (0.0, 1.0), "warmup_epochs": (0, 100_000),
        "final_lr_fraction": (0.0, 1.0), "grad_clip": (0.0, 1e6), "seed": (0, 2**63 - 1), "threads": (1, 1024),
        "warmup_start": (0.0, 1.0), "gamma": (0.0, 1.0), "momentum": (0.0, 1.0), "prefetch": (0, 64)}

    epochs: int = 10
    lr: float = 3e-3
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    final_lr_fraction: float = 0.01
    grad_clip: float = 5.0  # 0: no clipping
    seed: int = 0
    threads: int = 2
    optimizer: str = "adamw"
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()  # epochs (multistep)
    gamma: float = 0.1
    warmup_start: float = 0.0  # the warm-up's first factor (0: lr / warm-up steps)
    mixed_precision: bool = False
    momentum: float = 0.9  # SGD only
    prefetch: int = 0  # batches prepared ahead on a loader thread (0: inline)

    def __post_init__(self) -> None:
        check_ranges(self)
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        if self.optimizer not in OPTIMIZERS or self.schedule not in SCHEDULES:
            raise ConfigError("unknown optimiser or schedule", expected=f"optimizer {OPTIMIZERS}, schedule {SCHEDULES}",
                              got=f"optimizer {self.optimizer!r}, schedule {self.schedule!r}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(m < 1 for m in self.milestones):
            raise ConfigError("milestones are increasing epoch numbers", got=str(self.milestones)[:80])


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """The shared header. Subclasses name the ``METHODS`` they configure and the ``VERB`` that runs them,
    and add their own cross-key checks in :meth:`validate`."""

    METHODS: ClassVar[tuple[str, ...]] = ()
    VERB: ClassVar[str] = "train"
    # old key -> new key, accepted with a deprecation message
    RENAMED_KEYS: ClassVar[dict[str, str]] = {}
    # documented ranges of numeric keys (subclasses add theirs; checked by validate)
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"batch_size": (1, 65_536)}

    method: str
    out: str
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 32
    export: bool = True

    @classmethod
    def load(cls: type[R], path: str | Path, overrides: dict[str, Any] | None = None) -> R:
        """The config of a run YAML (plus ``{"optim.epochs": 3}``-style overrides), checked whole."""
        data = renamed_keys(apply_overrides(load_yaml(path), overrides), cls.RENAMED_KEYS, str(path))
        config = build(cls, data, str(path))
        if config.method not in cls.METHODS:
            raise ConfigError(f"{path}: method '{config.method}' is not run by `edgereid {cls.VERB}`",
                              expected=f"method: one of {list(cls.METHODS)}")
        config.validate(str(path))
        return config

    def validate(self, where: str) -> None:
        """Checks that involve several keys; ``where`` names the file in errors (subclasses call this).
        Numeric keys without a range of their own are whole counts from 0 to 10**9 (ints; floats are finite
        already when the file is read)."""
        check_ranges(self)
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.type in ("int", int) and not isinstance(value, bool) and not 0 <= value <= 10**9:
                raise ConfigError(f"{where}: '{spec.name}' is out of range", expected="a count from 0 to 10**9",
                                  got=str(value)[:40])


@dataclass(frozen=True, kw_only=True)
class TrainRun(RunConfig):
    """``edgereid train``: a registered ``model`` built with ``model_args``."""

    model: str
    model_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DistillRun(RunConfig):
    """``edgereid distill``: a registered ``student`` built with ``student_args``; subclasses whose teacher
    runs during distillation add ``teacher``."""

    VERB: ClassVar[str] = "distill"
    RENAMED_KEYS: ClassVar[dict[str, str]] = {"model": "student", "model_args": "student_args"}

    student: str
    student_args: dict[str, Any] = field(default_factory=dict)


def renamed_keys(data: dict[str, Any], renamed: dict[str, str], where: str) -> dict[str, Any]:
    """``data`` with old top-level keys moved to their new names (each with a deprecation message); a
    file that gives both the old and the new key is an error, since one of them would be ignored."""
    for old, new in renamed.items():
        if old not in data:
            continue
        if new in data:
            raise ConfigError(f"{where} gives both '{old}' and '{new}'", expected=f"only '{new}'",
                              fix=f"delete '{old}' ('{new}' replaces it)")
        warnings.warn(f"{where}: the key '{old}' is deprecated in this config; rename it to '{new}'",
                      FutureWarning, stacklevel=3)
        data[new] = data.pop(old)
    return data
