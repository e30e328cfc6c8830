#!/usr/bin/env python3
"""A camera-gateway app to copy: video in, one JSON line per identity event out.

    edgereid synth --layout video --out videos --seed 1000           # synthetic footage, cam0..cam2
    python samples/camera_gateway.py --video videos/cam0.mp4 --camera 0 --enroll-gallery people.npz
    python samples/camera_gateway.py --video videos/cam1.mp4 --camera 1 --gallery people.npz

It reads a video file or an RTSP URL with OpenCV, finds people with OpenCV's HOG people detector and
faces with a Haar cascade (stand-ins for the app's own detector: anything with ``detect(frame)``
returning ``[N, 4]`` boxes fits), follows people with ``trackers``' ByteTrack when it is installed (``pip
install trackers``) and a simple IoU tracker otherwise (``--tracker``), averages each track's
embeddings, and reports an identity event when a track's identity settles or changes (debounced over
``--min-hits`` frames). With ``--enroll-gallery``, every track seen long enough is enrolled as a new
identity ``cam<C>-track<T>`` instead, and the gallery is saved at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from edgereid.errors import EdgeReidError
from edgereid.gallery import Gallery
from edgereid.pipeline import Pipeline
from edgereid.ops.postprocess import l2_normalize
from edgereid.types import FaceBoxes, FrameResult


class Detector(Protocol):
    """What the gateway needs from a detector."""

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Boxes ``[N, 4]`` (x1, y1, x2, y2) in frame pixels."""


class HogPeopleDetector:
    """OpenCV's built-in HOG + linear SVM people detector (no model file needed)."""

    def __init__(self, min_height: int = 80) -> None:
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.min_height = min_height

    def detect(self, frame: np.ndarray) -> np.ndarray:
        rects, weights = self.hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32)
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in rects], np.float32)
        keep = cv2.dnn.NMSBoxes([list(map(int, r)) for r in rects], np.ravel(weights).tolist(), 0.3, 0.4)
        boxes = boxes[np.ravel(keep).astype(int)]
        return boxes[(boxes[:, 3] - boxes[:, 1]) >= self.min_height]


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (ships with opencv-python-headless < 5)."""

    def __init__(self, min_size: int = 12) -> None:
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self.cascade.empty():
            raise RuntimeError("Haar cascade not found: install opencv-python-headless<5 (5.x ships none)")
        self.min_size = min_size

    def detect(self, frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        rects = self.cascade.detectMultiScale(grey, 1.1, 3, minSize=(self.min_size, self.min_size))
        return np.array([[x, y, x + w, y + h] for x, y, w, h in rects], np.float32).reshape(-1, 4)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``[N, 4]`` and ``[M, 4]``."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


@dataclass(eq=False)
class Track:
    """One followed person: last box, running mean embedding, identity bookkeeping."""

    track_id: int
    box: np.ndarray
    embedding: np.ndarray
    hits: int = 1
    missed: int = 0
    candidate: str | None = None
    candidate_hits: int = 0
    reported: str | None = field(default=None)

    def absorb(self, box: np.ndarray, embedding: np.ndarray) -> None:
        """One more frame of this track: its box, and the embedding folded into the running mean."""
        self.box, self.hits, self.missed = box, self.hits + 1, 0
        self.embedding = l2_normalize(self.embedding * (self.hits - 1) + embedding)


class IouTracker:
    """Greedy IoU association; tracks die after ``max_missed`` frames without a match."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5) -> None:
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 1

    def update(self, boxes: np.ndarray, embeddings: np.ndarray) -> list[Track]:
        """Tracks matched or created for each box, in box order."""
        assigned: list[Track | None] = [None] * len(boxes)
        if self.tracks and len(boxes):
            overlaps = iou(np.stack([t.box for t in self.tracks]), boxes)
            for t_index, b_index in sorted(np.argwhere(overlaps >= self.min_iou).tolist(),
                                           key=lambda tb: -overlaps[tb[0], tb[1]]):
                track = self.tracks[t_index]
                if assigned[b_index] is None and track not in assigned:
                    assigned[b_index] = track
        for b_index, track in enumerate(assigned):
            if track is None:
                track = Track(self._next_id, boxes[b_index], embeddings[b_index])
                self._next_id += 1
                self.tracks.append(track)
                assigned[b_index] = track
            else:
                track.absorb(boxes[b_index], embeddings[b_index])
        for track in self.tracks:
            if track not in assigned:
                track.missed += 1
        self.finished += [t for t in self.tracks if t.missed > self.max_missed]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return assigned  # type: ignore[return-value]


class ByteTracker:
    """``trackers``' ByteTrack (Kalman motion, high- then low-confidence association) decides which box is
    which track; embeddings are averaged per track as :class:`IouTracker` does. Boxes ByteTrack has not yet
    confirmed (its first frames of a new track) get no track."""

    def __init__(self, fps: float) -> None:
        import supervision as sv
        from trackers import ByteTrackTracker

        self._detections = sv.Detections
        self._byte = ByteTrackTracker(frame_rate=fps)
        self._by_id: dict[int, Track] = {}
        self.finished: list[Track] = []

    @property
    def tracks(self) -> list[Track]:
        return list(self._by_id.values())

    def update(self, boxes: np.ndarray, embeddings: np.ndarray) -> list[Track | None]:
        """Tracks for each box, in box order (None where ByteTrack has not confirmed one)."""
        detections = self._detections(xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
                                      data={"row": np.arange(len(boxes))})
        tracked = self._byte.update(detections)
        assigned: list[Track | None] = [None] * len(boxes)
        for row, track_id in zip(tracked.data["row"], tracked.tracker_id):
            if track_id < 0:
                continue
            track = self._by_id.get(int(track_id))
            if track is None:
                track = self._by_id[int(track_id)] = Track(int(track_id), boxes[row], embeddings[row])
            else:
                track.absorb(boxes[row], embeddings[row])
            assigned[row] = track
        return assigned


def make_tracker(kind: str, fps: float) -> IouTracker | ByteTracker:
    """``bytetrack``, ``iou``, or ``auto``: ByteTrack when ``trackers`` imports, the IoU tracker otherwise."""
    if kind == "iou":
        return IouTracker()
    try:
        return ByteTracker(fps)
    except ImportError:
        if kind == "bytetrack":
            raise EdgeReidError("--tracker bytetrack needs the trackers package", fix="pip install trackers") from None
        return IouTracker()


def debounced_event(track: Track, identity: str | None, min_hits: int) -> bool:
    """True when ``identity`` has held for ``min_hits`` frames and differs from the last report."""
    label = identity or "unknown"
    if label == track.candidate:
        track.candidate_hits += 1
    else:
        track.candidate, track.candidate_hits = label, 1
    if track.candidate_hits >= min_hits and label != track.reported:
        track.reported = label
        return True
    return False


def faces_in_people(face_boxes: np.ndarray, person_boxes: np.ndarray) -> np.ndarray:
    """Keep faces whose centre lies in the top half of some person box."""
    if not len(face_boxes) or not len(person_boxes):
        return np.zeros((0, 4), np.float32)
    centre = (face_boxes[:, :2] + face_boxes[:, 2:]) / 2
    top = person_boxes.copy()
    top[:, 3] = (person_boxes[:, 1] + person_boxes[:, 3]) / 2
    inside = ((centre[:, None, 0] >= top[None, :, 0]) & (centre[:, None, 0] <= top[None, :, 2])
              & (centre[:, None, 1] >= top[None, :, 1]) & (centre[:, None, 1] <= top[None, :, 3]))
    return face_boxes[inside.any(1)]


def run(args: argparse.Namespace) -> int:
    capture = cv2.VideoCapture(args.video)
    if not capture.isOpened():
        print(f"cannot open {args.video}: give a video file or an rtsp:// URL", file=sys.stderr)
        return 2
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    config = {"reid_model": args.reid, "keypoint_model": args.keypoints, "face_model": args.face, "max_batch": 32}
    people, faces = HogPeopleDetector(), HaarFaceDetector() if args.face else None
    tracker = make_tracker(args.tracker, fps)
    print(f"tracking with {type(tracker).__name__}", file=sys.stderr)
    with Pipeline(config) as pipeline:
        card = pipeline.models["reid_model"].card
        enroll = Gallery(card) if args.enroll_gallery else None
        gallery = Gallery.load(args.gallery, card=card) if args.gallery and enroll is None else None
        index = 0
        while args.max_frames <= 0 or index < args.max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            boxes = people.detect(frame)
            face_boxes = faces_in_people(faces.detect(frame), boxes) if faces else None
            result = pipeline.process([frame], [boxes], args.camera, [index / fps],
                                      [FaceBoxes(face_boxes)] if faces else None)[0]
            _report(result, tracker.update(boxes, result.persons.embeddings), args, gallery)
            index += 1
    if enroll is not None:
        for track in tracker.tracks + tracker.finished:
            if track.hits >= args.min_hits:
                enroll.enroll(f"cam{args.camera}-track{track.track_id}", track.embedding)
        enroll.save(args.enroll_gallery)
        print(f"enrolled {len(enroll.identities)} tracks into {args.enroll_gallery}", file=sys.stderr)
    return 0


def _report(result: FrameResult, tracks: list[Track | None], args: argparse.Namespace, gallery: Gallery | None) -> None:
    """Print the events of one frame; identities are decided on each track's mean embedding."""
    persons = result.persons
    for i, track in enumerate(tracks):
        if track is None:
            continue
        identity, score = None, 0.0
        if gallery is not None and len(gallery):
            match = gallery.match(track.embedding[None])[0]
            identity, score = match.identity, match.score
        if not debounced_event(track, identity, args.min_hits):
            continue
        event = {"camera": args.camera, "time": round(result.timestamp, 2), "track": track.track_id,
                 "box": [round(float(v), 1) for v in persons.boxes[i]], "identity": identity or "unknown",
                 "score": round(score, 3)}
        if persons.keypoints is not None:
            event["keypoints"] = np.round(persons.keypoints[i], 1).tolist()
        print(json.dumps(event), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", required=True, help="video file or rtsp:// URL")
    parser.add_argument("--camera", default="0", help="camera id in the events")
    parser.add_argument("--reid", default="samples/models/reid/model.onnx")
    parser.add_argument("--keypoints", default="samples/models/keypoints/model.onnx")
    parser.add_argument("--face", default=None, help="face model (optional; enables the Haar face path)")
    parser.add_argument("--gallery", help="ReID gallery to match against (Gallery.save file)")
    parser.add_argument("--enroll-gallery", help="enroll every track into a new gallery saved here")
    parser.add_argument("--tracker", default="auto", choices=["auto", "bytetrack", "iou"],
                        help="auto: trackers' ByteTrack when installed, else the IoU tracker")
    parser.add_argument("--min-hits", type=int, default=3, help="frames an identity must hold before an event")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    try:
        return run(parser.parse_args())
    except EdgeReidError as exc:
        print(f"camera_gateway: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
