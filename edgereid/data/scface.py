"""SCface, the Surveillance Cameras Face Database (Grgic, Delac and Grgic, Multimedia Tools and Applications 51(3),
2011; www.scface.org), in its released layout, and the low-resolution identification protocol run on it.

The database's convention (``SCface_database`` as distributed; 130 subjects numbered 001-130)::

    mugshot_frontal_cropped_all/001_frontal.JPG                       one high-quality frontal mugshot per subject
    surveillance_cameras_distance_1/cam_1/001_cam1_1.jpg              subject 001, camera 1, distance 1
    surveillance_cameras_distance_{1,2,3}/cam_{1..7}/NNN_camC_D.jpg

Distance 1 is the farthest: 4.20 m, then 2.60 m (2) and 1.00 m (3). Cameras 1-5 are visible-light, 6 and 7 the
infrared (night-vision) ones; the other folders (``mugshot_frontal_original_all``, ``mugshot_rotation_all``,
``surveillance_cameras_IR_cam8`` with the infrared mugshots, ``surveillance_cameras_all``) are not read, though
``gallery_folder`` can name the uncropped mugshots instead. Strictness: inside the folders read, every image file
must follow the convention (camera and distance also agreeing with its folder), else an InputError names it, since
a renamed or stray image would otherwise change the probe set silently; files that are not images (by suffix) and
hidden files (such as macOS ``._`` copies) are skipped.

Protocol. The database paper compares the surveillance images with the frontal mugshots per camera and distance
(its "DayTime" scenario; the Idiap verification protocol built on it splits subjects 1-43/44-87/88-130 into
world/dev/eval). The low-resolution face recognition literature reports closed-set identification instead: gallery
= the frontal mugshots, one per subject; probes = the visible-light images (cameras 1-5) of one distance; rank-1
(here also rank-5) by cosine similarity, separately for d1, d2 and d3. Papers that fine-tune on SCface use subjects
1-50 for that and test on subjects 51-130 (80 mugshots against 400 probes per distance): pass
``subjects=SCFACE_TEST_SUBJECTS``. Without fine-tuning, all 130 subjects are the test set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.data.tinyface import ranked_hits
from edgereid.errors import InputError
from edgereid.fileio import IMAGE_SUFFIXES
from edgereid.ops.scores import checked_array

SCFACE_DISTANCES = (1, 2, 3)
SCFACE_DISTANCE_METRES = {1: 4.20, 2: 2.60, 3: 1.00}
SCFACE_VISIBLE_CAMERAS = (1, 2, 3, 4, 5)
SCFACE_INFRARED_CAMERAS = (6, 7)
SCFACE_TUNE_SUBJECTS = tuple(range(1, 51))
SCFACE_TEST_SUBJECTS = tuple(range(51, 131))
SCFACE_GALLERY = "mugshot_frontal_cropped_all"

_MUGSHOT = re.compile(r"(\d{3})_frontal", re.IGNORECASE)
_SURVEILLANCE = re.compile(r"(\d{3})_cam([1-7])_([1-3])", re.IGNORECASE)
_LAYOUT = (f"the SCface_database folder holding {SCFACE_GALLERY}/NNN_frontal.JPG and "
           "surveillance_cameras_distance_D/cam_C/NNN_camC_D.jpg (D 1-3, C 1-7)")


@dataclass(frozen=True)
class ScfaceTest:
    """The mugshot gallery (one per subject) and, per distance (1, 2, 3), the surveillance probes with their
    subject and camera; probes are sorted by subject, then camera."""

    gallery: list[Path]
    gallery_ids: np.ndarray
    probes: dict[int, list[Path]]
    probe_ids: dict[int, np.ndarray]
    probe_cameras: dict[int, np.ndarray]


def _folder(path: Path) -> Path:
    if not path.is_dir():
        raise InputError(f"missing SCface folder {path}", expected=_LAYOUT,
                         fix="point to the extracted SCface_database folder, with its folder and file names unchanged")
    return path


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def _parsed(path: Path, pattern: re.Pattern[str], convention: str) -> tuple[int, ...]:
    match = pattern.fullmatch(path.stem)
    if match is None:
        raise InputError(f"{path} does not follow SCface's file names", expected=convention, got=path.name,
                         fix="restore the database's original name, or move the file out of the SCface folders")
    return tuple(int(group) for group in match.groups())


def _checked_choice(values: Iterable[int], allowed: tuple[int, ...], name: str) -> tuple[int, ...]:
    chosen = tuple(int(v) for v in values)
    if not chosen or not set(chosen) <= set(allowed) or len(set(chosen)) != len(chosen):
        raise InputError(f"'{name}' must name distinct SCface {name}", expected=f"some of {allowed}", got=str(chosen))
    return chosen


def _read_gallery(folder: Path, subjects: frozenset[int] | None) -> dict[int, Path]:
    mugshots: dict[int, Path] = {}
    for path in _images(folder):
        (subject,) = _parsed(path, _MUGSHOT, "NNN_frontal.JPG (NNN the 3-digit subject)")
        if subject in mugshots:
            raise InputError(f"subject {subject:03d} has two mugshots in {folder}",
                             got=f"{mugshots[subject].name}, {path.name}", fix="keep one of them")
        mugshots[subject] = path
    if subjects is not None:
        missing = sorted(subjects - mugshots.keys())
        if missing:
            raise InputError(f"{len(missing)} of the requested subjects have no mugshot in {folder}",
                             got=", ".join(f"{s:03d}" for s in missing[:10]),
                             fix="use the complete database, or pass only the subjects it holds")
        mugshots = {s: p for s, p in mugshots.items() if s in subjects}
    if not mugshots:
        raise InputError(f"no mugshot images in {folder}", expected="NNN_frontal.JPG images")
    return dict(sorted(mugshots.items()))


def _camera_folder(distance_folder: Path, camera: int) -> Path:
    released = distance_folder / f"cam_{camera}"
    return released if released.is_dir() or not (distance_folder / f"cam{camera}").is_dir() \
        else distance_folder / f"cam{camera}"


def _read_distance(folder: Path, distance: int, cameras: tuple[int, ...],
                   subjects: frozenset[int] | None) -> list[tuple[int, int, Path]]:
    rows: dict[tuple[int, int], Path] = {}
    for camera in cameras:
        for path in _images(_folder(_camera_folder(folder, camera))):
            subject, named_camera, named_distance = _parsed(
                path, _SURVEILLANCE, "NNN_camC_D.jpg (subject NNN, camera C 1-7, distance D 1-3)")
            if (named_camera, named_distance) != (camera, distance):
                raise InputError(f"{path} is in the folder of camera {camera} at distance {distance}",
                                 got=f"its name says camera {named_camera} at distance {named_distance}",
                                 fix="move it back to the folder its name gives")
            if (subject, camera) in rows:
                raise InputError(f"two images of subject {subject:03d}, camera {camera}, distance {distance}",
                                 got=f"{rows[subject, camera].name}, {path.name}", fix="keep one of them")
            rows[subject, camera] = path
    rows = {key: path for key, path in rows.items() if subjects is None or key[0] in subjects}
    if not rows:
        raise InputError(f"no surveillance images of the chosen subjects and cameras in {folder}",
                         expected="NNN_camC_D.jpg images in its cam_C folders")
    return [(subject, camera, path) for (subject, camera), path in sorted(rows.items())]


def read_scface(root: str | Path, distances: Iterable[int] = SCFACE_DISTANCES,
                cameras: Iterable[int] = SCFACE_VISIBLE_CAMERAS, subjects: Iterable[int] | None = None,
                gallery_folder: str = SCFACE_GALLERY) -> ScfaceTest:
    """SCface's mugshot gallery and surveillance probes (``root`` is ``SCface_database`` or the folder holding it).

    ``subjects`` keeps only those subjects in gallery and probes (``SCFACE_TEST_SUBJECTS`` for the 50/80 protocol);
    each must have a mugshot. Every probe's subject has a mugshot too, else the gallery is incomplete: InputError.
    """
    root = Path(root)
    root = root / "SCface_database" if (root / "SCface_database").is_dir() else root
    distances = _checked_choice(distances, SCFACE_DISTANCES, "distances")
    cameras = _checked_choice(cameras, SCFACE_VISIBLE_CAMERAS + SCFACE_INFRARED_CAMERAS, "cameras")
    chosen = None if subjects is None else frozenset(int(s) for s in subjects)
    mugshots = _read_gallery(_folder(root / gallery_folder), chosen)
    probes, probe_ids, probe_cameras = {}, {}, {}
    for distance in distances:
        rows = _read_distance(_folder(root / f"surveillance_cameras_distance_{distance}"), distance, cameras, chosen)
        unmatched = sorted({subject for subject, _, _ in rows} - mugshots.keys())
        if unmatched:
            raise InputError(f"surveillance images of {len(unmatched)} subjects have no mugshot in {gallery_folder}",
                             got=", ".join(f"{s:03d}" for s in unmatched[:10]),
                             fix="use the complete database; every probe needs its subject's mugshot")
        probes[distance] = [path for _, _, path in rows]
        probe_ids[distance] = np.array([subject for subject, _, _ in rows], np.int64)
        probe_cameras[distance] = np.array([camera for _, camera, _ in rows], np.int64)
    return ScfaceTest(list(mugshots.values()), np.array(list(mugshots), np.int64), probes, probe_ids, probe_cameras)


def scface_identification(gallery_embeddings: np.ndarray, gallery_ids: np.ndarray, probe_embeddings: np.ndarray,
                          probe_ids: np.ndarray, ranks: Iterable[int] = (1, 5)) -> dict[str, float]:
    """Closed-set identification of one probe set (one distance) against the mugshots: for each k in ``ranks``,
    ``rank{k}`` is the share of probes whose subject is among the k most cosine-similar gallery entries."""
    gallery = checked_array(gallery_embeddings, "gallery_embeddings", 2, np.float32)
    probes = checked_array(probe_embeddings, "probe_embeddings", 2, np.float32)
    gallery_ids = checked_array(gallery_ids, "gallery_ids", 1, None)
    probe_ids = checked_array(probe_ids, "probe_ids", 1, None)
    if len(gallery) != len(gallery_ids) or len(probes) != len(probe_ids) or not len(probes):
        raise InputError("SCface embeddings and identities disagree in number, or there are no probes",
                         got=f"{len(gallery)} gallery embeddings for {len(gallery_ids)} ids, "
                             f"{len(probes)} probe embeddings for {len(probe_ids)} ids")
    if gallery.shape[1] != probes.shape[1]:
        raise InputError("gallery and probe embeddings differ in dimension",
                         got=f"{gallery.shape[1]} and {probes.shape[1]}", fix="embed both with the same model")
    ranks = tuple(int(k) for k in ranks)
    if not ranks or min(ranks) < 1:
        raise InputError("'ranks' must be positive", got=str(ranks))
    first = ranked_hits(probes, probe_ids, gallery, gallery_ids).argmax(axis=1)
    scores: dict[str, float] = {f"rank{k}": float((first < k).mean()) for k in ranks}
    scores.update(probes=len(probes), gallery=len(gallery))
    return scores


def scface_by_distance(test: ScfaceTest, gallery_embeddings: np.ndarray,
                       probe_embeddings: Mapping[int, np.ndarray],
                       ranks: Iterable[int] = (1, 5)) -> dict[str, dict[str, float]]:
    """The protocol's table: :func:`scface_identification` for each distance read, keyed ``d1``, ``d2``, ``d3``;
    ``probe_embeddings[d]`` holds one row per path of ``test.probes[d]``, in that order."""
    ranks = tuple(ranks)
    table = {}
    for distance, paths in test.probes.items():
        if distance not in probe_embeddings or len(probe_embeddings[distance]) != len(paths):
            raise InputError(f"probe embeddings of distance {distance} do not match the probes read",
                             expected=f"{len(paths)} rows",
                             got="none" if distance not in probe_embeddings else f"{len(probe_embeddings[distance])}")
        table[f"d{distance}"] = scface_identification(gallery_embeddings, test.gallery_ids,
                                                      probe_embeddings[distance], test.probe_ids[distance], ranks)
    return table
