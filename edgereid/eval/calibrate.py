"""Accept thresholds chosen from a target false-accept rate, on held-out synthetic-world footage.

Embeddings of every person (ReID model) or aligned face (face model) seen by several cameras of a
held-out world are compared pairwise: pairs of one identity from different cameras are genuine, pairs
of different identities are impostors. The threshold is the score that lets at most ``far`` of the
impostor pairs through; it is stored in the model's card with that rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.card import AcceptThreshold, read_card, write_card
from edgereid.data.synthetic import World, WorldConfig, to_pixel_centres
from edgereid.errors import EdgeReidError
from edgereid.ops.scores import tar_at_far
from edgereid.pipeline import Pipeline
from edgereid.types import FaceBoxes


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold, the true-accept rate it gives, and how many pairs it rests on."""

    threshold: AcceptThreshold
    tar: float
    genuine_pairs: int
    impostor_pairs: int


def world_embeddings(model: str, task: str, world: World, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings, pids and camera ids of everyone the pipeline sees in ``frames`` frames per camera."""
    role = {"reid": "reid_model", "face": "face_model"}[task]
    embeddings, pids, cams = [], [], []
    with Pipeline({role: model}) as pipeline:
        for camera in world.cameras:
            for frame in world.scene(camera.cam_id, frames, pace=4.0):
                objects = frame.persons if task == "reid" else frame.faces
                if not objects:
                    continue
                boxes = np.stack([o.box for o in objects])
                faces = None
                if task == "face":
                    faces = FaceBoxes(boxes, to_pixel_centres(np.stack([o.landmarks for o in objects])))
                    boxes = np.zeros((0, 4))
                result = pipeline.process([frame.frame], [boxes], str(camera.cam_id), [frame.timestamp],
                                          [faces] if faces is not None else None)[0]
                if task == "reid":
                    kept, vectors = objects, result.persons.embeddings
                else:  # faces the pipeline skipped as too small have no embedding to score
                    usable = ~result.faces.too_small
                    kept, vectors = [o for o, ok in zip(objects, usable) if ok], result.faces.embeddings[usable]
                embeddings.append(vectors)
                pids += [o.pid for o in kept]
                cams += [camera.cam_id] * len(kept)
    return np.concatenate(embeddings), np.array(pids), np.array(cams)


def calibrate(model: str | Path, far: float = 1e-3, seed: int = 600, identities: int = 60,
              cameras: int = 3, frames: int = 60) -> Calibration:
    """Threshold for ``model`` (a ReID or face ONNX file with a card) at false-accept rate ``far``."""
    card = read_card(model)
    if card.task not in ("reid", "face"):
        raise EdgeReidError(f"only ReID and face models take an accept threshold, not '{card.task}'")
    world = World(WorldConfig(seed=seed, num_identities=identities, num_cameras=cameras))
    emb, pids, cams = world_embeddings(str(model), card.task, world, frames)
    scores = emb @ emb.T
    upper = np.triu(np.ones_like(scores, dtype=bool), k=1)
    same = pids[:, None] == pids[None, :]
    genuine = scores[upper & same & (cams[:, None] != cams[None, :])]
    impostor = scores[upper & ~same]
    if len(genuine) == 0 or len(impostor) < 1 / far:
        raise EdgeReidError("too few pairs to calibrate at this false-accept rate",
                            got=f"{len(genuine)} genuine, {len(impostor)} impostor pairs",
                            fix="raise --frames or --identities, or ask for a larger far")
    tar, threshold = tar_at_far(genuine, impostor, far)
    return Calibration(AcceptThreshold(round(float(threshold), 6), far), float(tar), len(genuine), len(impostor))


def write_threshold(model: str | Path, calibration: Calibration) -> Path:
    """Store the threshold in the model's card (atomic rewrite of the ONNX file)."""
    card = read_card(model)
    return write_card(model, card.replace(accept_threshold=calibration.threshold))
