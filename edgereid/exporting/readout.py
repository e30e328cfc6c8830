"""``edgereid keypoints readout``: fit the linear read-out of a K-point student ONNX on labelled crops and
store it in the model's card, so the runtime returns named joints.

The read-out arithmetic is :mod:`edgereid.ops.readout`; this module runs the exported
student through the runtime (what the deployed model will predict), which is why it lives on the
exporting side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgereid.card import COCO17_JOINTS, KeypointReadout, read_card, write_card
from edgereid.errors import InputError
from edgereid.data.person_crops import read_labelled_crops
from edgereid.ops.readout import fit_readout, normalise
from edgereid.models.keypoints import COCO17_SKELETON
from edgereid.ops.geometry import plan_whole_images, points_to_input
from edgereid.runtime.backends import load_backend
from edgereid.runtime.model import CropModel


def store_readout(model: str | Path, labelled: str | Path, out: str | Path, limit: int | None = None) -> tuple[Path, int]:
    """Fit the read-out of a K-point student ONNX on a labelled crop folder and write the model with it in
    its card (joint names and skeleton from the folder); returns the path and the number of crops used."""
    card = read_card(model)
    if card.task != "keypoints":
        raise InputError(f"{model} is a {card.task} model", expected="a keypoint student ONNX")
    crops = read_labelled_crops(labelled, limit)
    runner = CropModel(load_backend(model))
    plan = plan_whole_images(crops.images, card.input)
    predicted = points_to_input(runner.run(crops.images, plan).keypoints, plan.to_frame)
    truth = points_to_input(crops.keypoints[..., :2], plan.to_frame)
    size = np.array([card.input.width, card.input.height])
    matrix = fit_readout(normalise(predicted, size), normalise(truth, size), crops.keypoints[..., 2] > 0)
    readout = KeypointReadout(matrix=matrix.tolist(), joint_names=crops.joint_names)
    skeleton = COCO17_SKELETON if crops.joint_names == COCO17_JOINTS else ()
    return write_card(model, card.replace(readout=readout, skeleton=skeleton), out), len(crops.images)
