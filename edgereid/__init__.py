"""edgereid: identity models from research to camera gateways.

The top-level package imports nothing heavy: deployment code (runtime, gallery, pipeline) runs
without torch, TensorRT or cuda-python installed.
"""

__version__ = "0.1.0"
