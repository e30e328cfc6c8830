"""Which module runs which ``method:`` of a training config, for ``edgereid train`` and ``edgereid distill``.

Modules are imported only when their method runs, so the command line starts fast.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any

from edgereid.config import apply_overrides, load_yaml
from edgereid.errors import ConfigError

# verb -> method -> (module, config class, entry function)
METHODS: dict[str, dict[str, tuple[str, str, str]]] = {
    "train": {"supervised": ("edgereid.methods.supervised", "TrainConfig", "train"),
              "arcface": ("edgereid.methods.coreface", "FaceMarginConfig", "train"),
              "coreface": ("edgereid.methods.coreface", "FaceMarginConfig", "train"),
              "dcac": ("edgereid.methods.dcac", "DCACConfig", "train"),
              "aio": ("edgereid.methods.aio.training", "AIOConfig", "train")},
    "distill": {"ccface": ("edgereid.methods.ccface", "CCFaceConfig", "distill"),
                "stable_keypoints": ("edgereid.methods.stable_keypoints.distill", "KeypointDistillConfig", "distill"),
                "reid_kd": ("edgereid.methods.reid_distill", "ReidDistillConfig", "distill")},
}


def verb_of(method: str) -> str | None:
    """``train`` or ``distill`` for a known method, else None."""
    return next((verb for verb, methods in METHODS.items() if method in methods), None)


def load_run_config(path: str | Path, overrides: dict[str, Any] | None, verb: str) -> Any:
    """The strict config object of a run YAML (plus overrides), checked to be a ``verb`` method."""
    method = apply_overrides(copy.deepcopy(load_yaml(path)), overrides).get("method")
    methods = METHODS[verb]
    if method not in methods:
        owner = verb_of(str(method))
        raise ConfigError(f"{path}: `edgereid {verb}` does not run method {method!r}",
                          expected=f"method: one of {sorted(methods)}",
                          fix=f"run it with `edgereid {owner}`" if owner else
                          f"known methods: {sorted(m for ms in METHODS.values() for m in ms)}")
    return load_config_class(verb, method).load(path, overrides)


def load_config_class(verb: str, method: str) -> Any:
    """The config class of ``method`` (imports the method's module)."""
    module_name, config_name, _ = METHODS[verb][method]
    return getattr(importlib.import_module(module_name), config_name)


def run(config: Any, config_dict: dict[str, Any], verb: str) -> Path:
    """Run a loaded config with its method's entry function; returns the checkpoint."""
    module_name, _, entry = METHODS[verb][config.method]
    return getattr(importlib.import_module(module_name), entry)(config, config_dict)
