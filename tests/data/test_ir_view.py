"""The IR camera's view of person crops (AIO's stage-2 IR): the scene before any camera effect, recorded by the
world's IR camera, so an IR-camera crop and its IR view are the same picture up to sensor noise."""

import numpy as np
import pytest

from edgereid.card import InputSpec
from edgereid.data.cameras import to_modality
from edgereid.data.scene_crops import scene_crops
from edgereid.data.synthetic import WorldSpec
from edgereid.errors import ConfigError

SPEC = InputSpec(height=64, width=32, resize="letterbox")


def test_ir_views_match_what_the_ir_camera_records():
    world = WorldSpec(seed=31, identities=6, cameras=4, frames_per_camera=6)
    crops = scene_crops(world, person_spec=SPEC, ir_view=True, progress=False)[0]
    assert crops.ir_images.shape == crops.images.shape
    centre = crops.ir_images[:, 16:48, 12:20]  # inside every crop (the letterbox bars keep the mean colour)
    assert (centre[..., 0] == centre[..., 2]).all()  # grey, as IR
    ir_camera = crops.cams == 3
    assert ir_camera.any() and (~ir_camera).any()
    real = crops.images[ir_camera].astype(np.float32)
    view = crops.ir_images[ir_camera].astype(np.float32)
    # the IR camera's own crops and the IR views of the same moments differ by noise and JPEG only; the IR
    # transform applied after the camera's effects (the old stage 2) lands further from them
    after = np.stack([to_modality(image, "ir", np.random.default_rng(0)) for image in crops.images[ir_camera]])
    assert np.abs(real - view).mean() < 0.5 * np.abs(real - after.astype(np.float32)).mean()
    # a subset keeps its IR views aligned with its crops
    subset = crops.select(np.flatnonzero(ir_camera)[:3])
    assert np.array_equal(subset.ir_images, crops.ir_images[np.flatnonzero(ir_camera)[:3]])


def test_ir_views_need_an_ir_camera():
    with pytest.raises(ConfigError, match="no IR camera"):
        scene_crops(WorldSpec(seed=31, identities=4, cameras=2, frames_per_camera=2), person_spec=SPEC,
                    ir_view=True, progress=False)
