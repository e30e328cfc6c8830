"""edgereid: identity models from research to camera gateways.

The public API, importable from the package itself::

    from edgereid import Pipeline, PipelineConfig, Gallery, ModelCard, FaceBoxes, FrameResult, load_backend

Names load lazily on first use, so ``import edgereid`` stays light: it imports no torch, onnx, TensorRT or
cuda-python (not even onnxruntime until a model is opened); deployment code runs without them installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgereid.version import __version__

# public name -> the module that defines it
_PUBLIC = {
    "Pipeline": "edgereid.pipeline", "PipelineConfig": "edgereid.pipeline", "CameraConfig": "edgereid.pipeline",
    "Gallery": "edgereid.gallery", "Match": "edgereid.gallery",
    "ModelCard": "edgereid.card", "InputSpec": "edgereid.card", "OutputSpec": "edgereid.card",
    "read_card": "edgereid.card", "write_card": "edgereid.card",
    "FaceBoxes": "edgereid.types", "FrameResult": "edgereid.types", "Persons": "edgereid.types",
    "Faces": "edgereid.types", "load_backend": "edgereid.runtime.backends", "EdgeReidError": "edgereid.errors",
}

__all__ = sorted([*_PUBLIC, "__version__"])

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load on first use
    from edgereid.card import InputSpec, ModelCard, OutputSpec, read_card, write_card
    from edgereid.errors import EdgeReidError
    from edgereid.gallery import Gallery, Match
    from edgereid.pipeline import CameraConfig, Pipeline, PipelineConfig
    from edgereid.runtime.backends import load_backend
    from edgereid.types import FaceBoxes, Faces, FrameResult, Persons


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'edgereid' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
