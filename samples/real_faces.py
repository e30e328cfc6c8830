#!/usr/bin/env python3
"""The face path on two real photographs: detect, crop at low resolutions, enroll one, match both.

A smoke check on real pixels, not an accuracy claim: the bundled face models learned from the
synthetic world's drawn faces. The photos ship offline with scikit-image (``astronaut``, Eileen
Collins) and matplotlib (``grace_hopper.jpg``); faces are found with OpenCV's Haar cascade (OpenCV 4.x
ships it, 5.x does not). The astronaut's full-resolution face is enrolled; then each face is shrunk to
12-32 px, as a distant camera would see it, and matched against that gallery through the pipeline.
The cascade gives boxes only, so faces take the pipeline's box-crop path, not the landmark alignment
the models were trained with: one more reason the scores say little about accuracy.

    pip install scikit-image          # plus edgereid itself
    python samples/real_faces.py [--face-model samples/models/face/model.onnx] [--out real-faces]

Writes ``real_faces.json`` (boxes, scores, decisions) and ``real_faces.png`` (the crops as the model
saw them, with scores) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from edgereid.errors import MissingDependencyError, require
from edgereid.gallery import Gallery
from edgereid.pipeline import Pipeline
from edgereid.types import FaceBoxes

SIZES = (12, 16, 24, 32)
ENROLLED = "astronaut"


def photos() -> dict[str, np.ndarray]:
    """The two offline photographs as BGR arrays."""
    require("skimage", "dev", "the real-photo sample (pip install scikit-image)")
    import matplotlib.cbook
    from skimage import data

    hopper = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return {ENROLLED: cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), "grace_hopper": hopper}


def detect_face(image: np.ndarray) -> np.ndarray:
    """The largest frontal face found by OpenCV's Haar cascade, as (x1, y1, x2, y2)."""
    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / "haarcascade_frontalface_default.xml"
    if not path.is_file():
        raise MissingDependencyError("OpenCV's Haar cascades are missing (OpenCV 5 dropped them)",
                                     fix="pip install 'opencv-python-headless<5'")
    grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    found = cv2.CascadeClassifier(str(path)).detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
    if len(found) == 0:
        raise RuntimeError("no face found")
    x, y, w, h = max(found, key=lambda f: f[2] * f[3])
    return np.array([x, y, x + w, y + h], np.float32)


def shrink(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The face region resampled to ``size`` x ``size`` px (area averaging, as a distant camera would)."""
    x1, y1, x2, y2 = box.astype(int)
    return cv2.resize(image[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_AREA)


def run(face_model: str, out: Path) -> dict[str, object]:
    images = photos()
    boxes = {name: detect_face(image) for name, image in images.items()}
    records = []
    tiles = []
    with Pipeline({"face_model": face_model}) as pipeline:
        gallery = Gallery(pipeline.models["face_model"].card)
        enrolled = pipeline.process([images[ENROLLED]], [np.zeros((0, 4))], "photo",
                                    faces=[FaceBoxes(boxes[ENROLLED][None])])[0]
        gallery.enroll(ENROLLED, enrolled.faces.embeddings)
        pipeline.face_gallery = gallery
        for name, image in images.items():
            probes = [("full", image, boxes[name])] + [
                (f"{s} px", shrink(image, boxes[name], s), np.array([0, 0, s, s], np.float32)) for s in SIZES]
            for label, picture, box in probes:
                faces = pipeline.process([picture], [np.zeros((0, 4))], "photo", faces=[FaceBoxes(box[None])])[0].faces
                score, identity = float(gallery.search(faces.embeddings, k=1)[1][0][0]), faces.identities[0]
                records.append({"photo": name, "probe": label, "box": box.tolist(), "score": round(score, 4),
                                "decision": identity or "unknown"})
                tiles.append((shrink(picture, box, 96), f"{name[:9]} {label}", f"{score:.2f} -> {identity or 'unknown'}"))
    report = {"face_model": face_model, "threshold": gallery.threshold, "boxes": {k: v.tolist() for k, v in boxes.items()},
              "matches": records}
    out.mkdir(parents=True, exist_ok=True)
    (out / "real_faces.json").write_text(json.dumps(report, indent=1))
    cv2.imwrite(str(out / "real_faces.png"), _sheet(tiles))
    return report


def _sheet(tiles: list[tuple[np.ndarray, str, str]], columns: int = 5) -> np.ndarray:
    """Tiles of 96 px with two caption lines under each."""
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * 130, columns * 110, 3), 255, np.uint8)
    for i, (tile, first, second) in enumerate(tiles):
        y, x = (i // columns) * 130, (i % columns) * 110 + 7
        sheet[y + 2:y + 98, x:x + 96] = tile
        for line, text in enumerate((first, second)):
            cv2.putText(sheet, text, (x - 4, y + 110 + 11 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (20, 20, 20), 1,
                        cv2.LINE_AA)
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--face-model", default="samples/models/face/model.onnx", help="face ONNX model with a card")
    parser.add_argument("--out", default="real-faces", help="folder for real_faces.json and real_faces.png")
    args = parser.parse_args(argv)
    report = run(args.face_model, Path(args.out))
    print(f"threshold {report['threshold']}")
    for record in report["matches"]:
        print(f"{record['photo']:>13} {record['probe']:>6}: score {record['score']:+.3f} -> {record['decision']}")
    print(f"wrote {args.out}/real_faces.json and real_faces.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
