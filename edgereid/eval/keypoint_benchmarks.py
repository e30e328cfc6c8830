"""``edgereid evaluate keypoints --dataset NAME --root DIR``: unsupervised keypoints on the StableKeypoints paper's
datasets with its protocol and metrics (``methods.md`` §3.3).

Each model's K points on the training split (up to ``fit_limit`` images) give the linear read-out without bias
(centred normalised coordinates, least squares per landmark over the images where it is visible); the read-out is
applied to the model's points on the test split, and the dataset's own metric scores them:

=============  =================================  =========================================================
dataset        reader                             metric (as the official ``eval.py``)
=============  =================================  =========================================================
``celeba``     CelebA aligned + MAFL split         inter-ocular NME, x and y normalised by the image first (%)
``deepfashion`` DeepFashion in-shop keypoints      PCK at 6 px in the 256 px image (%)
``taichi``     Tai-Chi-HD frames with landmarks   summed L2 error over visible joints at 256 px
``human36m``   Human3.6M (Zhang et al.'s frames)  orientation-invariant mean error x128 (images masked)
=============  =================================  =========================================================

The official Human3.6M read-out is also fitted with left and right swapped repeatedly; here it is fitted once
(the metric itself stays orientation-invariant), which can only make the number worse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from edgereid.data.keypoint_sets import KeypointSet, read_celeba_mafl, read_deepfashion
from edgereid.data.keypoint_video_sets import read_human36m, read_taichi
from edgereid.errors import InputError
from edgereid.eval import keypoint_metrics
from edgereid.fileio import read_bounded_image
from edgereid.ops.readout import apply_matrix, fit_readout, normalise

READERS: dict[str, Callable[..., KeypointSet]] = {"celeba": read_celeba_mafl, "deepfashion": read_deepfashion,
                                                  "taichi": read_taichi, "human36m": read_human36m}
METRICS = {"celeba": "inter-ocular NME (%)", "deepfashion": "PCK@6px (%)", "taichi": "summed error (px at 256)",
           "human36m": "orientation-invariant error (px at 128)"}
MAX_IMAGE_BYTES = 32 << 20


def _read(path: Path, mask: Path | None) -> np.ndarray:
    """An image, multiplied by its foreground mask when it has one (Human3.6M, as the official loader does)."""
    image = read_bounded_image(path, MAX_IMAGE_BYTES, "image")
    if mask is not None:
        foreground = read_bounded_image(mask, MAX_IMAGE_BYTES, "foreground mask", grey=True)
        if foreground.shape != image.shape[:2]:
            raise InputError(f"mask {mask} does not match its image {path.name}")
        image = image * (foreground > 0)[..., None].astype(np.uint8)
    return image


def _subset(data: KeypointSet, limit: int | None) -> KeypointSet:
    if limit is None or len(data.images) <= limit:
        return data
    rows = np.linspace(0, len(data.images) - 1, limit).round().astype(int)
    masks = [data.masks[i] for i in rows] if data.masks else None
    return KeypointSet([data.images[i] for i in rows], data.keypoints[rows], data.visible[rows], data.sizes[rows],
                       masks)


def _points(model: Path, data: KeypointSet, tta_views: int | None) -> np.ndarray:
    """The model's K points on every image, in the pixels of the frame the annotations refer to."""
    from edgereid.eval.keypoints_unsup import predict_images

    images = [_read(path, data.masks[i] if data.masks else None) for i, path in enumerate(data.images)]
    points = predict_images(model, images, tta_views)
    actual = np.array([[image.shape[1], image.shape[0]] for image in images], np.float64)
    return points * (data.sizes / actual)[:, None, :]


def score(dataset: str, pred: np.ndarray, data: KeypointSet) -> float:
    """The dataset's metric, in the units the paper reports."""
    if dataset == "celeba":
        return 100 * keypoint_metrics.inter_ocular_nme(pred, data.keypoints, image_size=data.sizes)
    if dataset == "deepfashion":
        return 100 * keypoint_metrics.pck(pred, data.keypoints, 6.0)
    if dataset == "taichi":
        return keypoint_metrics.summed_keypoint_error(pred, data.keypoints, data.visible)
    return keypoint_metrics.orientation_invariant_error(pred, data.keypoints, data.sizes)


def evaluate_dataset(models: dict[str, Path], dataset: str, root: str | Path, fit_limit: int = 2000,
                     test_limit: int | None = None, tta_views: int | None = None) -> dict:
    """Each model (a teacher ``.safetensors`` or an ONNX keypoint model) read out on ``dataset``'s training split
    and scored on its test split; plus the mean pose of the training split."""
    if dataset not in READERS:
        raise InputError(f"unknown keypoint dataset {dataset!r}", expected=" | ".join(READERS))
    fit = _subset(READERS[dataset](root, split="train"), fit_limit)
    test = _subset(READERS[dataset](root, split="test"), test_limit)
    fit_truth = normalise(fit.keypoints, fit.sizes)
    counts = np.maximum(fit.visible.sum(0), 1)[:, None]
    mean_pose = (fit_truth * fit.visible[..., None]).sum(0) / counts
    results = {"mean-pose baseline": score(dataset, (mean_pose[None] + 0.5) * test.sizes[:, None, :], test)}
    for label, path in models.items():
        matrix = fit_readout(normalise(_points(Path(path), fit, tta_views), fit.sizes), fit_truth, fit.visible)
        pred = (apply_matrix(normalise(_points(Path(path), test, tta_views), test.sizes), matrix) + 0.5) \
            * test.sizes[:, None, :]
        results[label] = score(dataset, pred, test)
    return {"dataset": dataset, "root": str(root), "metric": METRICS[dataset], "fit_images": len(fit.images),
            "test_images": len(test.images), "models": {k: str(v) for k, v in models.items()}, "results": results}


def dataset_table(report: dict) -> str:
    """One row per model with the dataset's metric."""
    lines = [f"| model | {report['dataset']}: {report['metric']} |", "|---|---|"]
    lines += [f"| {label} | {value:.3f} |" for label, value in report["results"].items()]
    return "\n".join(lines) + "\n"


def write_dataset_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """``keypoints_<dataset>.json`` and ``.md`` in ``out_dir``."""
    from edgereid.fileio import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"keypoints_{report['dataset']}"
    return {"json": atomic_write_text(out / f"{stem}.json", json.dumps(report, indent=1)),
            "markdown": atomic_write_text(out / f"{stem}.md", dataset_table(report))}
