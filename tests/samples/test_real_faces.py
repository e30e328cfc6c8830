import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skimage", reason="scikit-image (the dev extra) ships the astronaut photo")
ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("real_faces", ROOT / "samples" / "real_faces.py")
real_faces = importlib.util.module_from_spec(SPEC)
sys.modules["real_faces"] = real_faces
SPEC.loader.exec_module(real_faces)

# Face boxes of the two photos as found by MTCNN (environment notes), to check the cascade's.
KNOWN_FACES = {"astronaut": [181, 62, 268, 172], "grace_hopper": [174, 120, 356, 341]}


def _iou(a, b) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_real_photos_run_through_the_face_path(tmp_path):
    assert real_faces.main(["--face-model", str(ROOT / "samples/models/face/model.onnx"), "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "real_faces.json").read_text())
    assert (tmp_path / "real_faces.png").stat().st_size > 0
    for name, box in report["boxes"].items():
        assert _iou(box, KNOWN_FACES[name]) > 0.4, f"{name}: cascade box {box}"
    matches = {(m["photo"], m["probe"]): m for m in report["matches"]}
    assert len(matches) == 2 * (1 + len(real_faces.SIZES))
    enrolled = matches[("astronaut", "full")]
    assert enrolled["score"] > 0.999 and enrolled["decision"] == "astronaut"  # the enrolled picture itself
    assert all(np.isfinite(m["score"]) and -1.0 <= m["score"] <= 1.0 + 1e-6 for m in report["matches"])
