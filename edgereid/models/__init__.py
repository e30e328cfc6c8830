"""Student architectures in plain torch. Importing this package registers them."""

from edgereid.models import clip_reid, face, iresnet, keypoints, reid  # noqa: F401  (registration side effect)
from edgereid.registry import create_model, get_entry, list_models

__all__ = ["create_model", "get_entry", "list_models"]
