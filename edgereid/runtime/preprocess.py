"""Deprecated location: the preprocessing arithmetic moved to :mod:`edgereid.ops` (``geometry``, ``preprocess``,
``reference``), where training and the runtime share it. Old names still resolve here, with a warning."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {
    "edgereid.ops.geometry": ("CropPlan", "FACE_TEMPLATE_112", "check_landmarks_in_boxes", "plan_crops",
                              "plan_whole_images", "similarity_to_template", "validate_boxes", "validate_landmarks",
                              "whole_image_boxes"),
    "edgereid.ops.preprocess": ("allocate_batch", "allocate_staging", "crop_into", "fill_bgr", "normalise_batch",
                                "nv12_to_bgr", "preprocess_batch", "validate_frame"),
    "edgereid.ops.reference": ("preprocess_reference", "resize_bilinear_reference"),
}


def __getattr__(name: str) -> Any:
    for module, names in _MOVED.items():
        if name in names:
            warnings.warn(f"edgereid.runtime.preprocess.{name} moved to {module}.{name}; import it from there",
                          DeprecationWarning, stacklevel=2)
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'edgereid.runtime.preprocess' has no attribute '{name}'")
