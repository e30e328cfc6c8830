"""The three default students shipped inside the package (ReID, keypoints, face; trained on the synthetic
world only, see the README), so ``edgereid demo`` runs from any folder after ``pip install edgereid``.

In the repository these files are links to ``samples/models/{task}/model.onnx`` (one copy of the bytes);
a wheel carries the bytes themselves. :func:`bundled_model` finds them by name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgereid.errors import InputError

BUNDLED = ("reid", "keypoints", "face")


def bundled_model(task: str) -> Path:
    """The path of the bundled ``task`` model (``reid``, ``keypoints`` or ``face``)."""
    if task not in BUNDLED:
        raise InputError(f"no bundled model for '{task}'", expected=f"one of {BUNDLED}")
    path = Path(str(resources.files(__name__) / f"{task}.onnx"))
    if not path.is_file():
        raise InputError(f"the bundled {task} model is missing from this install", got=str(path),
                         fix="reinstall edgereid, or pass the model's path explicitly")
    return path
