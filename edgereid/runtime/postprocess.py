"""Deprecated location: postprocessing moved to :mod:`edgereid.ops` (``postprocess.l2_normalize``,
``geometry.points_to_frame``, ``readout.apply_readout``). Old names still resolve here, with a warning."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {"l2_normalize": "edgereid.ops.postprocess", "points_to_frame": "edgereid.ops.geometry",
          "points_to_input": "edgereid.ops.geometry", "apply_readout": "edgereid.ops.readout"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(f"edgereid.runtime.postprocess.{name} moved to {_MOVED[name]}.{name}; import it from there",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'edgereid.runtime.postprocess' has no attribute '{name}'")
