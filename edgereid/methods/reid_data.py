"""Training crops for the ReID methods: the synthetic world's scenes, or dataset folders the user gives.

A dataset folder is in the Market-1501 layout (``bounding_box_train/`` with ``PID_cCAM...`` names), which
DukeMTMC-reID and CUHK03-NP share and into which MSMT17 is commonly converted; its training split is
read and every image is resized to the model input by the runtime's own preprocessing. Several folders
(the multi-source setting) are concatenated: identities and cameras of each folder are numbered after
those of the folders before it, so nobody is merged across datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from edgereid.card import InputSpec
from edgereid.data.scene_crops import CropSet, concat_crops, crops_from_cameras, runtime_crops_uint8, scene_crops
from edgereid.data.synthetic import WorldSpec
from edgereid.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class ReidDataKeys:
    """The keys of a ReID run config that say what it trains on: the synthetic world ``data``, or instead
    a Market-1501-layout ``dataset`` folder (or a list of them: the multi-source setting, identities and
    cameras numbered folder after folder); ``train_cameras`` (0-based; empty = all) are the source
    domains; batches hold ``ids_per_batch`` identities."""

    data: WorldSpec = field(default_factory=WorldSpec)
    dataset: str | tuple[str, ...] = ""
    train_cameras: tuple[int, ...] = ()
    ids_per_batch: int = 8

    def training_crops(self, spec: InputSpec) -> CropSet:
        """The configured crops at ``spec`` (see :func:`reid_training_crops`)."""
        return reid_training_crops(self.data, self.dataset, spec, self.train_cameras)


def dataset_folders(dataset: str | Sequence[str]) -> tuple[str, ...]:
    """A config's ``dataset``: "" (the synthetic world), one folder, or a list of folders."""
    if isinstance(dataset, str):
        return (dataset,) if dataset else ()
    if isinstance(dataset, (list, tuple)) and dataset and all(isinstance(d, str) and d for d in dataset):
        return tuple(dataset)
    raise ConfigError("dataset must be a folder or a non-empty list of folders", got=repr(dataset),
                      fix='e.g. dataset: data/Market-1501 or dataset: [data/DukeMTMC-reID, data/MSMT17]')


def image_crops(records, spec: InputSpec) -> CropSet:
    """Dataset images (whole images are the crops) through the runtime's preprocessing, with labels."""
    from edgereid.data.datasets import load_image
    from edgereid.ops.geometry import plan_whole_images

    images = [load_image(r.path) for r in records]
    plan = plan_whole_images(images, spec)
    return CropSet(runtime_crops_uint8(spec, images, plan), np.array([r.pid for r in records]),
                   np.array([r.camid for r in records]), placement=plan.placement)


def reid_training_crops(data: WorldSpec, dataset: str | Sequence[str], spec: InputSpec,
                        cameras: tuple[int, ...], ir_view: bool = False) -> CropSet:
    """Crops (uint8 BGR at ``spec``) with pids and 0-based cameras, restricted to ``cameras`` when given; with
    ``ir_view`` (the world only) each crop also as the world's IR camera would record it."""
    folders = dataset_folders(dataset)
    if not folders:
        return crops_from_cameras(scene_crops(data, person_spec=spec, ir_view=ir_view)[0], cameras)
    from edgereid.data.datasets import read_market1501

    parts: list[CropSet] = []
    pid_offset = cam_offset = 0
    for folder in folders:
        crops = image_crops(read_market1501(folder).train, spec)
        parts.append(CropSet(crops.images, crops.pids + pid_offset, crops.cams + cam_offset, placement=crops.placement))
        pid_offset, cam_offset = int(parts[-1].pids.max()) + 1, int(parts[-1].cams.max()) + 1
    return crops_from_cameras(concat_crops(parts), cameras)
