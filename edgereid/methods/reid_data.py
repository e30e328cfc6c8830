"""Training crops for the ReID methods: the synthetic world's scenes, or a dataset folder the user gives.

A dataset folder is in the Market-1501 layout (``bounding_box_train/`` with ``PID_cCAM...`` names), which
DukeMTMC-reID and CUHK03-NP share and into which MSMT17 is commonly converted; its training split is
read and every image is resized to the model input by the runtime's own preprocessing.
"""

from __future__ import annotations

import numpy as np

from edgereid.card import InputSpec
from edgereid.data.scene_crops import CropSet, SceneData, crops_from_cameras, runtime_crops_uint8, scene_crops


def reid_training_crops(data: SceneData, dataset: str, spec: InputSpec, cameras: tuple[int, ...]) -> CropSet:
    """Crops (uint8 BGR at ``spec``) with pids and 0-based cameras, restricted to ``cameras`` when given."""
    if not dataset:
        return crops_from_cameras(scene_crops(data, person_spec=spec)[0], cameras)
    from edgereid.data.datasets import load_image, read_market1501
    from edgereid.runtime.preprocess import plan_whole_images

    records = read_market1501(dataset).train
    images = [load_image(r.path) for r in records]
    plan = plan_whole_images(images, spec)
    crops = CropSet(runtime_crops_uint8(spec, images, plan), np.array([r.pid for r in records]),
                    np.array([r.camid for r in records]))
    return crops_from_cameras(crops, cameras)
