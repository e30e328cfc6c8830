"""Accept thresholds chosen from a target false-accept rate, on held-out synthetic-world footage or on the
user's own labelled crops.

Embeddings of every person (ReID model) or aligned face (face model) are compared pairwise: pairs of one
identity from different cameras (different pictures, for a face folder) are genuine, pairs of different
identities are impostors. The threshold is the score that lets at most ``far`` of the impostor pairs
through; it is stored in the model's card with that rate. A labelled folder is the Market-1501 layout for
persons (``query/`` and ``bounding_box_test/``, the identity and camera in each file name) or one
sub-folder per identity for faces.
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
    genuine: np.ndarray | None = None  # the scores, for plots
    impostor: np.ndarray | None = None


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


def folder_embeddings(model: str, task: str, folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings, identities and cameras of a labelled folder: Market-1501 (``query/`` and
    ``bounding_box_test/``) for persons, one sub-folder per identity for faces (each picture its own
    "camera", so every two pictures of one face make a genuine pair)."""
    from edgereid.pipeline.enrollment import embed_images, identity_folders, read_image
    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.model import crop_model_for

    if task == "reid":
        from edgereid.data.datasets import read_market1501

        split = read_market1501(folder)
        records = [r for r in split.query + split.gallery if r.pid >= 0]
        paths, pids, cams = [r.path for r in records], [r.pid for r in records], [r.camid for r in records]
    else:
        people = identity_folders(folder)
        paths = [p for images in people.values() for p in images]
        pids = [index for index, images in enumerate(people.values()) for _ in images]
        cams = list(range(len(paths)))
    if not paths:
        raise EdgeReidError(f"{folder} holds no labelled crops", fix="see `edgereid calibrate --help` for the layouts")
    with crop_model_for(load_backend(model)) as runner:
        embeddings = np.concatenate([embed_images(runner, [read_image(Path(p)) for p in paths[i:i + 64]])
                                     for i in range(0, len(paths), 64)])
    return embeddings, np.array(pids), np.array(cams)


def calibrate(model: str | Path, far: float = 1e-3, seed: int = 600, identities: int = 60,
              cameras: int = 3, frames: int = 60, folder: str | Path | None = None) -> Calibration:
    """Threshold for ``model`` (a ReID or face ONNX file with a card) at false-accept rate ``far``, on the
    labelled ``folder`` when given, else on a held-out synthetic world."""
    card = read_card(model)
    if card.task not in ("reid", "face"):
        raise EdgeReidError(f"only ReID and face models take an accept threshold, not '{card.task}'")
    if folder is not None:
        emb, pids, cams = folder_embeddings(str(model), card.task, folder)
    else:
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
    # unrounded: a threshold rounded down would let the impostor it sits on through, past the FAR
    return Calibration(AcceptThreshold(float(threshold), far), float(tar), len(genuine), len(impostor),
                       genuine, impostor)


def write_threshold(model: str | Path, calibration: Calibration, out: str | Path | None = None) -> Path:
    """Store the threshold in the model's card, in ``out`` (a new file) or, without it, in ``model`` itself
    (atomic rewrite)."""
    card = read_card(model)
    return write_card(model, card.replace(accept_threshold=calibration.threshold), out)


def plot_calibration(calibration: Calibration, path: str | Path, title: str) -> Path:
    """Genuine and impostor score histograms, and the ROC (TAR against FAR), the chosen threshold marked."""
    from edgereid.plots import score_plots

    return score_plots(calibration.genuine, calibration.impostor, calibration.threshold.score, path, title)
