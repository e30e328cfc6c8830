"""TinyFace (QMUL, ACCV 2018), the native low-resolution face identification benchmark, in its released layout:
``Testing_Set/Probe``, ``Testing_Set/Gallery_Match`` and ``Testing_Set/Gallery_Distractor`` image folders, with
``Testing_Set/probe_img_ID_pairs.mat`` (``probe_set``, ``probe_ids``) and ``gallery_match_img_ID_pairs.mat``
(``gallery_set``, ``gallery_ids``) naming each probe and gallery image's identity. The MATLAB files are read with
``scipy.io.loadmat`` (extra ``face-eval``), which parses data and runs no code.

Protocol (the benchmark's evaluation): every probe ranks the matched gallery together with the distractors by
similarity; rank-1/5/20 and mAP, its AP the trapezoid rule over precision-recall as the released code computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.errors import InputError, require
from edgereid.ops.postprocess import l2_normalize

TINYFACE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class TinyFaceTest:
    """The probe and matched-gallery images with identities, and the distractor images."""

    probes: list[Path]
    probe_ids: np.ndarray
    gallery: list[Path]
    gallery_ids: np.ndarray
    distractors: list[Path]


def _pairs(mat: Path, images_key: str, ids_key: str, folder: Path) -> tuple[list[Path], np.ndarray]:
    scipy_io = require("scipy.io", "face-eval", "reading TinyFace's identity lists")
    if not mat.is_file():
        raise InputError(f"missing {mat}", fix="point to TinyFace's folder, unchanged (Testing_Set inside)")
    try:
        loaded = scipy_io.loadmat(str(mat))
        names = [str(np.asarray(entry).reshape(-1)[0]) for entry in np.asarray(loaded[images_key]).reshape(-1)]
        ids = np.asarray(loaded[ids_key]).reshape(-1).astype(np.int64)
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise InputError(f"{mat} is not a TinyFace identity list", expected=f"variables {images_key}, {ids_key}",
                         got=str(exc)[:120]) from exc
    if len(names) != len(ids):
        raise InputError(f"{mat} names {len(names)} images for {len(ids)} identities")
    return [folder / name for name in names], ids


def read_tinyface(root: str | Path) -> TinyFaceTest:
    """TinyFace's test split (``root`` is the folder holding ``Testing_Set``, or ``Testing_Set`` itself)."""
    root = Path(root)
    test = root if root.name == "Testing_Set" else root / "Testing_Set"
    probes, probe_ids = _pairs(test / "probe_img_ID_pairs.mat", "probe_set", "probe_ids", test / "Probe")
    gallery, gallery_ids = _pairs(test / "gallery_match_img_ID_pairs.mat", "gallery_set", "gallery_ids",
                                  test / "Gallery_Match")
    distractor_folder = test / "Gallery_Distractor"
    distractors = sorted(p for p in distractor_folder.iterdir() if p.suffix.lower() in TINYFACE_SUFFIXES) \
        if distractor_folder.is_dir() else []
    return TinyFaceTest(probes, probe_ids, gallery, gallery_ids, distractors)


def _trapezoid_ap(hits: np.ndarray) -> float:
    """AP as TinyFace's released code computes it: precision-recall area by the trapezoid rule."""
    relevant = int(hits.sum())
    ap, recall_before, precision_before = 0.0, 0.0, 1.0
    found = 0
    for rank, hit in enumerate(hits[:np.flatnonzero(hits)[-1] + 1], 1):
        found += int(hit)
        recall, precision = found / relevant, found / rank
        ap += (recall - recall_before) * (precision_before + precision) / 2
        recall_before, precision_before = recall, precision
    return ap


def ranked_hits(probes: np.ndarray, probe_ids: np.ndarray, gallery: np.ndarray,
                gallery_ids: np.ndarray) -> np.ndarray:
    """Per probe, the gallery sorted by cosine similarity (ties in gallery order) as a boolean row, True where the
    gallery image has the probe's identity; ``row.argmax()`` is the 0-based rank of the first match. Shared by the
    TinyFace and SCface protocols. A probe with no match anywhere in the gallery is an InputError."""
    similarity = l2_normalize(np.asarray(probes, np.float32)) @ l2_normalize(np.asarray(gallery, np.float32)).T
    order = np.argsort(-similarity, axis=1, kind="stable")
    hits = np.asarray(gallery_ids)[order] == np.asarray(probe_ids)[:, None]
    if not hits.any(axis=1).all():
        raise InputError("a probe's identity is missing from the matched gallery", fix="check the identity lists")
    return hits


def tinyface_metrics(probes: np.ndarray, probe_ids: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray,
                     distractors: np.ndarray | None = None) -> dict[str, float]:
    """Rank-1/5/20 and mAP of probe embeddings against the matched gallery plus distractors (cosine)."""
    parts = [gallery] + ([distractors] if distractors is not None and len(distractors) else [])
    everything = np.concatenate(parts).astype(np.float32)
    labels = np.concatenate([np.asarray(gallery_ids), np.full(len(everything) - len(gallery), -1)])
    hits = ranked_hits(probes, probe_ids, everything, labels)
    first = hits.argmax(axis=1)
    return {"rank1": float((first < 1).mean()), "rank5": float((first < 5).mean()),
            "rank20": float((first < 20).mean()), "mAP": float(np.mean([_trapezoid_ap(row) for row in hits])),
            "probes": len(probes), "gallery": len(everything)}
