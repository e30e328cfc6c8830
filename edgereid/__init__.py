"""edgereid: identity models from research to camera gateways.

The top-level package imports nothing heavy: deployment code (runtime, gallery, pipeline) runs
without torch, TensorRT or cuda-python installed.
"""

from edgereid.version import __version__

__all__ = ["__version__"]
