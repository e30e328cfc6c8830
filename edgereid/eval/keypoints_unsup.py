"""``edgereid evaluate keypoints``: unsupervised keypoints read out to labelled joints, on held-out crops.

Protocol (the standard one of unsupervised-keypoint papers, ``methods.md`` §3.3): each model's K points
on a labelled *fit* folder give the linear read-out to the M true joints; the read-out is applied to the
model's points on a disjoint *test* folder. Models whose card already names the folder's joints (a
supervised student) are scored directly. Errors are in crop pixels: PCK@alpha of the crop's larger side
and NME by the crop diagonal, over visible joints. The mean-pose baseline predicts the fit folder's mean
normalised pose for every crop.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from edgereid.errors import InputError
from edgereid.eval.metrics import nme, pck
from edgereid.data.person_crops import LabelledCrops, read_labelled_crops
from edgereid.ops.readout import apply_matrix, fit_readout, normalise

MEAN_POSE = "mean-pose baseline"
SHEET_CROPS = 24


def _sizes(crops: LabelledCrops) -> np.ndarray:
    return np.array([[image.shape[1], image.shape[0]] for image in crops.images], np.float64)


def _run(path: Path, images: list[np.ndarray], tta_views: int | None):
    """A teacher's (``.safetensors``) or an ONNX model's outputs on BGR images: ``(points [N, K, 2] in image
    pixels, K, the card and runtime outputs of an ONNX model or None)``."""
    if path.suffix == ".safetensors":
        from edgereid.methods.stable_keypoints.teacher import KeypointTeacher

        teacher = KeypointTeacher(path, tta_views=tta_views)
        return teacher.predict_images(images).points, teacher.k, None
    from edgereid.card import read_card
    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.model import CropModel
    from edgereid.ops.geometry import plan_whole_images

    card = read_card(path)
    outputs = CropModel(load_backend(path)).run(images, plan_whole_images(images, card.input))
    return outputs.keypoints, card.output("coords").dims[0], (card, outputs)


def predict_images(path: str | Path, images: list[np.ndarray], tta_views: int | None = None) -> np.ndarray:
    """A model's own K points on BGR images, in image pixels (before any read-out)."""
    return _run(Path(path), images, tta_views)[0]


def predict(path: str | Path, crops: LabelledCrops,
            tta_views: int | None = None) -> tuple[np.ndarray, bool, int]:
    """Points ``[N, K, 2]`` in crop pixels from a teacher (``.safetensors``) or an ONNX student, whether
    they already are the folder's named joints, and the model's own number of keypoints K."""
    points, k, onnx = _run(Path(path), crops.images, tta_views)
    if onnx is None:
        return points, False, k
    card, outputs = onnx
    if card.readout is not None and card.readout.joint_names == crops.joint_names:
        return outputs.joints, True, k  # the read-out the model ships with, as the pipeline applies it
    return points, card.joint_names == crops.joint_names, k


def _scores(joints: np.ndarray, crops: LabelledCrops, alpha: float) -> dict[str, float]:
    sizes = _sizes(crops)
    boxes = np.concatenate([np.zeros_like(sizes), sizes], axis=1)
    visible = crops.keypoints[..., 2] > 0
    truth = crops.keypoints[..., :2]
    return {"pck": pck(joints, truth, visible, boxes, alpha), "nme": nme(joints, truth, visible,
                                                                        np.linalg.norm(sizes, axis=1))}


def evaluate(models: dict[str, Path], fit_folder: str | Path, test_folder: str | Path, *, fit_limit: int = 400,
             test_limit: int = 500, alpha: float = 0.1, tta_views: int | None = None,
             sheets: str | Path | None = None) -> dict[str, object]:
    """Scores per model (plus the mean-pose baseline) as a JSON-ready report; with ``sheets``, a PNG per
    model of the first test crops with its read-out joints drawn."""
    fit, test = read_labelled_crops(fit_folder, fit_limit), read_labelled_crops(test_folder, test_limit)
    if fit.joint_names != test.joint_names:
        raise InputError("the fit and test folders name different joints",
                         got=f"{fit.joint_names[:3]}... vs {test.joint_names[:3]}...",
                         fix="label both folders with the same joint set")
    fit_visible = fit.keypoints[..., 2] > 0
    fit_norm = normalise(fit.keypoints[..., :2], _sizes(fit))
    counts = np.maximum(fit_visible.sum(0), 1)[:, None]
    mean_pose = (fit_norm * fit_visible[..., None]).sum(0) / counts
    baseline = (np.broadcast_to(mean_pose, test.keypoints[..., :2].shape) + 0.5) * _sizes(test)[:, None]
    results = {MEAN_POSE: {**_scores(baseline, test, alpha), "k": 0, "readout": "none"}}
    for label, path in models.items():
        start = time.perf_counter()
        test_points, named, k = predict(path, test, tta_views)
        if named:
            joints, how = test_points, "named joints of the model itself (its heads or its card's read-out)"
        else:
            fit_points = predict(path, fit, tta_views)[0]
            matrix = fit_readout(normalise(fit_points, _sizes(fit)), fit_norm, fit_visible)
            joints = (apply_matrix(normalise(test_points, _sizes(test)), matrix) + 0.5) * _sizes(test)[:, None]
            how = f"linear read-out fitted on {len(fit.images)} crops"
        results[label] = {**_scores(joints, test, alpha), "k": k, "readout": how,
                          "seconds": round(time.perf_counter() - start, 1)}
        if sheets:
            from edgereid.plots import keypoint_sheet

            name = "".join(c if c.isalnum() else "_" for c in label).strip("_")
            keypoint_sheet(test.images[:SHEET_CROPS], joints[:SHEET_CROPS], Path(sheets) / f"joints_{name}.png")
    protocol = {"fit_folder": str(fit_folder), "test_folder": str(test_folder), "fit_crops": len(fit.images),
                "test_crops": len(test.images), "alpha": alpha, "tta_views": tta_views,
                "models": {k: str(v) for k, v in models.items()}}
    return {"protocol": protocol, "results": results}


def markdown_table(report: dict[str, object]) -> str:
    """One row per model: K, PCK@alpha, NME, how the joints were read out."""
    alpha = report["protocol"]["alpha"]  # type: ignore[index]
    lines = [f"| model | K | PCK@{alpha:g} | NME (crop diagonal) | joints |", "|---|---|---|---|---|"]
    for label, row in report["results"].items():  # type: ignore[union-attr]
        lines.append(f"| {label} | {row['k'] or '-'} | {row['pck']:.3f} | {row['nme']:.4f} | {row['readout']} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, object], out_dir: str | Path) -> dict[str, Path]:
    """``keypoints_unsup.json`` and ``keypoints_unsup.md`` in ``out_dir``."""
    from edgereid.fileio import atomic_write_text

    out = Path(out_dir)
    return {"json": atomic_write_text(out / "keypoints_unsup.json", json.dumps(report, indent=1)),
            "markdown": atomic_write_text(out / "keypoints_unsup.md", markdown_table(report))}
