"""Real face training sets for the face trainers: identity folders and insightface RecordIO, decoded lazily, with
the template landmarks that make the trainers' alignment a resize; a CoReFace run on each."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgereid.card import InputSpec
from edgereid.data.face_sets import align_faces, render_faces, training_faces
from edgereid.data.face_training import FaceData, aligned_landmarks
from edgereid.errors import ConfigError, InputError
from tests.data.test_face_records import _write_rec

ALIGNED_112 = InputSpec(height=112, width=112, mean=(127.5,) * 3, std=(128.0,) * 3)


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    renders = render_faces(seed=5, identities=4, per_identity=3, progress=False)
    return align_faces(renders.images, renders.landmarks, ALIGNED_112), renders.pids


@pytest.fixture()
def identity_folders(faces, tmp_path):
    images, pids = faces
    for i, (image, pid) in enumerate(zip(images, pids)):
        folder = tmp_path / "casia" / f"{1000 + int(pid):07d}"  # CASIA-WebFace names identities by number
        folder.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(folder / f"{i:03d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 98])
    (tmp_path / "casia" / "README.txt").write_text("not an identity")
    return tmp_path / "casia"


def test_identity_folder_faces_are_read_lazily_with_numbered_identities(identity_folders, faces):
    data = training_faces(FaceData(source="folder", path=str(identity_folders), workers=2))
    assert len(data) == 12 and data.images.shape == (12, 112, 112, 3)
    assert data.pids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    batch = data.images[np.array([0, 4, 11])]
    assert batch.shape == (3, 112, 112, 3)
    assert np.abs(batch.astype(int) - faces[0][[0, 4, 11]].astype(int)).mean() < 3  # JPEG at quality 98


def test_aligned_faces_pass_through_the_trainers_alignment_unchanged(identity_folders):
    data = training_faces(FaceData(source="folder", path=str(identity_folders)))
    rows = np.arange(4)
    realigned = align_faces(data.images[rows], data.landmarks[rows], ALIGNED_112)
    assert np.abs(realigned.astype(int) - data.images[rows].astype(int)).max() <= 1
    assert aligned_landmarks(2, 56)[0, 0].tolist() == pytest.approx([38.2946 / 2 + 0.5, 51.6963 / 2 + 0.5])


def test_recordio_faces_take_identities_from_the_record_labels(faces, tmp_path):
    images, pids = faces
    encoded = [cv2.imencode(".jpg", image)[1].tobytes() for image in images]
    header = (0, (13.0, 13.0), b"")  # record 0: image keys 1..12
    _write_rec(tmp_path, [header] + [(i + 1, (float(pid),) if i % 2 else (float(pid), 7.0), data)
                                     for i, (pid, data) in enumerate(zip(pids, encoded))])
    data = training_faces(FaceData(source="recordio", path=str(tmp_path)))
    assert data.pids.tolist() == pids.tolist() and data.images[5].shape == (112, 112, 3)


def test_bad_face_sets_are_refused(tmp_path, identity_folders):
    with pytest.raises(ConfigError, match="needs data.path"):
        FaceData(source="folder")
    with pytest.raises(ConfigError, match="unknown data.source"):
        FaceData(source="webface")
    with pytest.raises(InputError, match="no identity folders"):
        training_faces(FaceData(source="folder", path=str(tmp_path / "empty")))
    last = sorted(p for p in identity_folders.iterdir() if p.is_dir())[-1]
    assert cv2.imwrite(str(last / "zzz.jpg"), np.zeros((100, 90, 3), np.uint8))  # a 13th face, of another size
    data = training_faces(FaceData(source="folder", path=str(identity_folders)))
    with pytest.raises(InputError, match="face 12 .* is not a 112x112 colour image"):
        data.images[np.array([1, 12])]


def test_coreface_trains_on_an_identity_folder_set(identity_folders, tmp_path):
    pytest.importorskip("torch")
    from edgereid.cli import main

    out = tmp_path / "run"
    assert main(["train", "--config", "samples/configs/coreface_teacher.yaml", "--set", "model=test_face_teacher",
                 "--set", f"data={{source: folder, path: {identity_folders}}}", "--set", "batch_size=4",
                 "--set", "optim.epochs=2", "--set", "dropout={stage2_epoch: 1, stage1: 0.4, stage2: 0.6}",
                 "--set", "export=false", "--set", f"out={out}"]) == 0
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        assert handle.get_tensor("classifier.weight").shape[0] == 4  # one proxy per identity folder
