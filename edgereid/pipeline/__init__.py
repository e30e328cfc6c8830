"""The multi-camera pipeline (floor 3): :class:`Pipeline` and its :class:`PipelineConfig`.

``config`` (what runs), ``batcher`` (the bounded queue and its release rule; the batcher's only owner is
the pipeline), ``execution`` (one batch through every model, typed stages) and ``facade`` (``Pipeline``:
submit, results, process, close).
"""

from edgereid.pipeline.config import CameraConfig, PipelineConfig
from edgereid.pipeline.facade import Pipeline

__all__ = ["CameraConfig", "Pipeline", "PipelineConfig"]
