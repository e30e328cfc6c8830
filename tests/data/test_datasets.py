"""Dataset readers on real file-name conventions, and round trips through the synthetic writers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgereid.data.datasets import load_image, read_face_folder, read_market1501, read_sysu_like
from edgereid.data.synthetic import World, WorldConfig
from edgereid.errors import ConfigError, InputError


def _touch_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        assert cv2.imwrite(str(folder / name), np.full((8, 4, 3), 128, np.uint8))


def _by_name(records) -> dict[str, tuple[int, int]]:
    return {r.path.name: (r.pid, r.camid) for r in records}


def test_market1501_real_file_names(tmp_path):
    _touch_images(tmp_path / "bounding_box_train", ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg",
                                                    "0007_c2s3_070952_01.jpg"])
    (tmp_path / "bounding_box_train" / "Thumbs.db").write_bytes(b"not an image")
    _touch_images(tmp_path / "query", ["0001_c1s1_001051_00.jpg", "0003_c6s1_000176_00.jpg"])
    _touch_images(tmp_path / "bounding_box_test", ["0001_c2s1_000301_01.jpg", "-1_c1s1_000401_03.jpg",
                                                   "0000_c3s1_000151_01.jpg", "1501_c6s4_001877_02.jpg"])
    split = read_market1501(tmp_path)
    assert _by_name(split.train) == {"0002_c1s1_000451_03.jpg": (2, 0), "0002_c2s1_000301_01.jpg": (2, 1),
                                     "0007_c2s3_070952_01.jpg": (7, 1)}
    assert _by_name(split.query) == {"0001_c1s1_001051_00.jpg": (1, 0), "0003_c6s1_000176_00.jpg": (3, 5)}
    assert _by_name(split.gallery) == {"0001_c2s1_000301_01.jpg": (1, 1), "0000_c3s1_000151_01.jpg": (0, 2),
                                       "1501_c6s4_001877_02.jpg": (1501, 5)}  # junk -1 skipped, distractor 0000 kept
    assert all(r.modality == "rgb" for r in split.gallery)


def test_dukemtmc_file_names(tmp_path):
    _touch_images(tmp_path / "bounding_box_train", ["0001_c2_f0046182.jpg", "0005_c5_f0051341.jpg"])
    _touch_images(tmp_path / "query", ["0005_c2_f0046985.jpg"])
    _touch_images(tmp_path / "bounding_box_test", ["0005_c8_f0047030.jpg", "0000_c4_f0000001.jpg"])
    split = read_market1501(tmp_path)
    assert _by_name(split.train) == {"0001_c2_f0046182.jpg": (1, 1), "0005_c5_f0051341.jpg": (5, 4)}
    assert _by_name(split.query) == {"0005_c2_f0046985.jpg": (5, 1)}
    assert _by_name(split.gallery) == {"0005_c8_f0047030.jpg": (5, 7), "0000_c4_f0000001.jpg": (0, 3)}


def test_market1501_errors(tmp_path):
    (tmp_path / "query").mkdir()
    with pytest.raises(InputError, match="bounding_box_train, bounding_box_test") as info:
        read_market1501(tmp_path)
    assert "write_market1501" in str(info.value)
    _touch_images(tmp_path / "bounding_box_train", ["person.jpg"])
    (tmp_path / "bounding_box_test").mkdir()
    with pytest.raises(InputError, match="not named like a Market-1501"):
        read_market1501(tmp_path)


def test_load_image(tmp_path):
    _touch_images(tmp_path, ["a.png"])
    assert load_image(tmp_path / "a.png").shape == (8, 4, 3)
    (tmp_path / "b.jpg").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a readable image"):
        load_image(tmp_path / "b.jpg")
    with pytest.raises(InputError, match="cannot read"):
        load_image(tmp_path / "missing.jpg")


def test_market1501_round_trip(tmp_path):
    world = World(WorldConfig(seed=4, num_identities=6, num_cameras=3))
    root = world.write_market1501(tmp_path / "market", images_per_id_per_cam=2)
    split = read_market1501(root)
    assert {r.pid for r in split.train} == {1, 2, 3}
    assert len(split.train) == 3 * 3 * 2
    assert {r.pid for r in split.query} == {4, 5, 6}
    assert sorted((r.pid, r.camid) for r in split.query) == [(p, c) for p in (4, 5, 6) for c in range(3)]
    assert sorted({r.pid for r in split.gallery}) == [0, 4, 5, 6]
    assert sum(r.pid == 0 for r in split.gallery) == 3
    assert len(split.gallery) == 3 * 3 * 1 + 3
    assert not set(r.path for r in split.query) & set(r.path for r in split.gallery)
    assert len(list((root / "bounding_box_test").glob("-1_*.jpg"))) == 3  # junk written, not read
    assert load_image(split.query[0].path).shape == (128, 64, 3)
    with pytest.raises(InputError, match="already has files"):
        world.write_market1501(root)


def test_sysu_round_trip(tmp_path):
    world = World(WorldConfig(seed=4, num_identities=6, num_cameras=4))
    root = world.write_sysu_like(tmp_path / "sysu", images_per_id_per_cam=1)
    assert sorted(p.name for p in root.glob("cam*")) == ["cam1", "cam2", "cam3", "cam4"]
    assert (root / "exp" / "train_id.txt").read_text().strip() == "1,2,3"
    split = read_sysu_like(root)
    assert {r.pid for r in split.train} == {1, 2, 3}
    assert {r.modality for r in split.train} == {"rgb", "ir"}
    assert {(r.modality, r.camid) for r in split.query} == {("ir", 2)}
    assert {r.pid for r in split.query} == {r.pid for r in split.gallery} == {4, 5, 6}
    assert {r.modality for r in split.gallery} == {"rgb"} and len(split.gallery) == 9
    ir = load_image(split.query[0].path)
    assert np.abs(ir[..., 0].astype(int) - ir[..., 2].astype(int)).max() <= 2  # grey up to JPEG
    (root / "exp" / "val_id.txt").write_text("4\n")
    assert {r.pid for r in read_sysu_like(root).train} == {1, 2, 3, 4}
    assert {r.modality for r in read_sysu_like(root, ir_cameras=(1,)).query} == {"ir"}


def test_sysu_needs_ir_camera_and_layout(tmp_path):
    with pytest.raises(ConfigError, match="RGB and IR"):
        World(WorldConfig(num_identities=4, num_cameras=3)).write_sysu_like(tmp_path / "x")
    with pytest.raises(InputError, match="SYSU-MM01-style"):
        read_sysu_like(tmp_path)


def test_face_folder_round_trip(tmp_path):
    world = World(WorldConfig(seed=4, num_identities=3))
    root = world.write_faces(tmp_path / "faces", images_per_id=2, sizes=(112, 24, 16))
    faces = read_face_folder(root)
    assert sorted(faces) == ["hr", "lr16", "lr24"]
    for resolution, size in (("hr", 112), ("lr24", 24), ("lr16", 16)):
        assert [(r.pid, r.resolution) for r in faces[resolution]] == [(p, resolution) for p in (1, 2, 3)
                                                                      for _ in range(2)]
        assert load_image(faces[resolution][0].path).shape == (size, size, 3)
    pairs = {r.path.relative_to(root / "hr") for r in faces["hr"]}
    assert pairs == {r.path.relative_to(root / "lr16") for r in faces["lr16"]}
    with pytest.raises(InputError, match="HR size"):
        world.write_faces(tmp_path / "other", sizes=(16, 112))
    with pytest.raises(InputError, match="not a face folder"):
        read_face_folder(tmp_path / "nothing")


def test_synth_replaces_a_symlink_in_its_folder_instead_of_writing_through_it(tmp_path):
    from edgereid.data.synthetic import _write_image

    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    link = tmp_path / "out" / "0001_c1s1_000000_00.jpg"
    link.parent.mkdir()
    link.symlink_to(outside)
    _write_image(link, np.zeros((8, 8, 3), np.uint8))
    assert outside.read_text() == "keep me" and not link.is_symlink()
