"""The synthetic world: reproducible, geometrically honest, and not trivially separable."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgereid.data.appearance import CLOTHING_COLOURS, HAIR_COLOURS, SKIN_TONES
from edgereid.data.faces import ARCFACE_TEMPLATE_112
from edgereid.data.synthetic import World, WorldConfig
from edgereid.errors import ConfigError, InputError

VIEWS = {"front", "back", "side"}


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(seed=7, num_identities=10, num_cameras=4))


@pytest.fixture(scope="module")
def samples(world):
    """Person crops of every identity from every RGB camera."""
    rng = np.random.default_rng(0)
    return [world.render_person(pid, cam, rng) for pid in range(1, 11) for cam in range(3) for _ in range(3)]


def test_same_seed_gives_same_pixels_and_another_seed_another_world():
    a, b, c = (World(WorldConfig(seed=s, num_identities=4)) for s in (1, 1, 2))
    renders = [w.render_person(2, 1, np.random.default_rng(0)).image for w in (a, b, c)]
    faces = [w.render_face(3, np.random.default_rng(0)).image for w in (a, b, c)]
    frames = [next(w.scene(0, 1)).frame for w in (a, b, c)]
    for same, other in ((renders[:2], renders[2]), (faces[:2], faces[2]), (frames[:2], frames[2])):
        assert np.array_equal(same[0], same[1])
        assert not np.array_equal(same[0], other)
    assert [i.text for i in a.identities] == [i.text for i in b.identities]
    assert [i.text for i in a.identities] != [i.text for i in c.identities]


def test_existing_identities_and_cameras_do_not_change_when_the_world_grows():
    small, big = World(WorldConfig(seed=3, num_identities=5, num_cameras=2)), \
        World(WorldConfig(seed=3, num_identities=30, num_cameras=3))
    assert small.identities == big.identities[:5]
    assert small.cameras == big.cameras[:2]


def test_config_and_argument_errors():
    with pytest.raises(ConfigError, match="num_identities"):
        WorldConfig(num_identities=0)
    w = World(WorldConfig(num_identities=3))
    with pytest.raises(InputError, match="no identity 4"):
        w.render_person(4, 0, np.random.default_rng(0))
    with pytest.raises(InputError, match="no camera 3"):
        w.render_person(1, 3, np.random.default_rng(0))


def test_person_sample_shapes_and_types(world, samples):
    for s in samples:
        assert s.image.shape == (128, 64, 3) and s.image.dtype == np.uint8
        assert s.keypoints.shape == (17, 3) and s.keypoints.dtype == np.float32
        assert set(np.unique(s.keypoints[:, 2])) <= {0.0, 1.0}
        assert s.viewpoint in VIEWS
    assert {s.viewpoint for s in samples} == VIEWS
    big = World(WorldConfig(seed=7, num_identities=2, person_height=256, person_width=96, face_size=64))
    assert big.render_person(1, 0, np.random.default_rng(0)).image.shape == (256, 96, 3)
    assert big.render_face(1, np.random.default_rng(0)).image.shape == (64, 64, 3)


def test_keypoints_inside_image_and_anatomically_ordered(samples):
    for s in samples:
        k = s.keypoints
        assert (k[:, 0] >= 0).all() and (k[:, 0] < 64).all() and (k[:, 1] >= 0).all() and (k[:, 1] < 128).all()
        nose_y, shoulder_y, hip_y = k[0, 1], k[5:7, 1].mean(), k[11:13, 1].mean()
        knee_y, ankle_y = k[13:15, 1].mean(), k[15:17, 1].mean()
        assert nose_y < shoulder_y < hip_y < knee_y < ankle_y
        if s.viewpoint == "front":  # the subject's left is on the image right
            assert k[5, 0] > k[6, 0] and k[11, 0] > k[12, 0] and k[1, 0] > k[2, 0]
        elif s.viewpoint == "back":
            assert k[5, 0] < k[6, 0] and k[11, 0] < k[12, 0]
            assert not k[:3, 2].any()  # nose and eyes are hidden


def test_shoulders_sit_on_the_torso_corners_and_joints_on_the_body(world):
    """On a plain backdrop, visible joints are on drawn pixels, not on the backdrop."""
    rng = np.random.default_rng(1)
    on_body = total = 0
    for pid in range(1, 11):
        for _ in range(4):
            s = world.render_person(pid, 0, rng, clutter=False)
            backdrop = s.image[2, 2].astype(int)
            for x, y, visible in s.keypoints[5:]:
                if visible:
                    total += 1
                    on_body += np.abs(s.image[int(y), int(x)].astype(int) - backdrop).sum() > 30
            if s.viewpoint == "front":
                shoulder_y = int(s.keypoints[5:7, 1].mean()) + 2
                left, right = int(s.keypoints[6, 0]), int(s.keypoints[5, 0])
                # a lower bar than above: a white top is the clothing closest to the sage backdrop
                row = np.abs(s.image[shoulder_y].astype(int) - backdrop).sum(axis=1) > 20
                assert row[left:right + 1].all()  # the torso spans the shoulders
    assert on_body / total > 0.95


def test_faces_only_for_front_views_with_landmarks_inside(samples):
    for s in samples:
        assert (s.face_box is not None) == (s.viewpoint == "front")
        assert (s.face_landmarks is None) == (s.face_box is None)
        if s.face_box is not None:
            x1, y1, x2, y2 = s.face_box
            assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 128
            lm = s.face_landmarks
            assert lm.shape == (5, 2) and lm.dtype == np.float32
            assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
            assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]


def test_every_clothing_colour_is_worn_by_several_identities():
    for num_identities, at_least in ((10, 2), (16, 4)):
        w = World(WorldConfig(seed=11, num_identities=num_identities))
        wearers = {colour: {i.pid for i in w.identities
                            if colour in (i.attributes.upper_colour, i.attributes.lower_colour)}
                   for colour in CLOTHING_COLOURS}
        assert min(len(pids) for pids in wearers.values()) >= at_least
    tops = [i.attributes.upper_colour for i in w.identities]
    assert all(tops.count(colour) >= 2 for colour in tops)  # nobody is their top colour alone


def test_skin_tones_and_hair_colours_are_shared_by_several_identities():
    w = World(WorldConfig(seed=11, num_identities=16))
    skins = [i.attributes.skin_tone for i in w.identities]
    hairs = [i.attributes.hair_colour for i in w.identities]
    assert all(skins.count(tone) == 16 // len(SKIN_TONES) for tone in range(len(SKIN_TONES)))
    assert all(hairs.count(colour) == 16 // len(HAIR_COLOURS) for colour in HAIR_COLOURS)


def test_attribute_text_describes_the_person(world):
    for identity in world.identities:
        a = identity.attributes
        for word in (a.upper_colour, a.lower_colour, a.lower_style, a.upper_style):
            assert word in identity.text
        if a.accessory != "none":
            assert a.accessory in identity.text
    assert len({i.text for i in world.identities}) == len(world.identities)


def test_cameras_and_modalities(world):
    assert [c.modality for c in world.cameras] == ["rgb", "rgb", "rgb", "ir"]
    assert {c.modality for c in World(WorldConfig(num_cameras=3)).cameras} == {"rgb"}
    rng = np.random.default_rng(2)
    ir = world.render_person(1, 3, rng).image
    assert np.array_equal(ir[..., 0], ir[..., 1]) and np.array_equal(ir[..., 0], ir[..., 2])
    rgb = world.render_person(1, 0, rng, clutter=False).image
    assert np.array_equal(world.to_modality(rgb, "rgb", rng), rgb)
    converted = world.to_modality(rgb, "ir", rng)
    assert converted.shape == rgb.shape and np.array_equal(converted[..., 0], converted[..., 2])
    sketch = world.to_modality(rgb, "sketch", rng)
    assert sketch.shape == rgb.shape
    assert 0.6 < (sketch[..., 0] == 255).mean() < 0.99  # dark lines on white
    with pytest.raises(InputError, match="unknown modality"):
        world.to_modality(rgb, "thermal", rng)


def test_face_crops_follow_the_template_and_degrade(world):
    rng = np.random.default_rng(3)
    face = world.render_face(2, rng)
    assert face.image.shape == (112, 112, 3) and face.image.dtype == np.uint8
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
    eye_mid = face.landmarks[:2].mean(axis=0)
    assert np.abs(eye_mid - ARCFACE_TEMPLATE_112[:2].mean(axis=0)).max() < 12
    small = world.degrade_face(face.image, 16, rng)
    assert small.shape == (16, 16, 3) and small.dtype == np.uint8
    with pytest.raises(InputError):
        world.degrade_face(face.image, 200, rng)


def test_pictures_of_one_face_differ_and_the_same_seed_repeats_them(world):
    """Head pose, light, expression and cover change between pictures of one identity."""
    faces = [world.render_face(4, np.random.default_rng(k)) for k in range(6)]
    for other in faces[1:]:
        assert np.abs(faces[0].image.astype(int) - other.image.astype(int)).mean() > 10
    turns = [(f.landmarks[2, 0] - f.landmarks[:2, 0].mean()) / (f.landmarks[1, 0] - f.landmarks[0, 0])
             for f in faces]  # the nose's sideways offset, in eye distances
    assert max(turns) - min(turns) > 0.05
    again = world.render_face(4, np.random.default_rng(0))
    assert np.array_equal(again.image, faces[0].image) and np.array_equal(again.landmarks, faces[0].landmarks)


def test_eye_landmarks_sit_on_the_irises_of_turned_heads(world):
    """Landmarks follow the head turn: the iris under each eye landmark is darker than the eye
    white or skin a few pixels to either side."""
    darker = []
    for k in range(40):
        face = world.render_face(k % 10 + 1, np.random.default_rng(k))
        grey = cv2.cvtColor(face.image, cv2.COLOR_BGR2GRAY).astype(float)
        for x, y in face.landmarks[:2].astype(int):
            darker.append(grey[y, x] < grey[y - 1:y + 2, [x - 5, x + 5]].mean() - 10)
    assert np.mean(darker) > 0.95


def test_raw_grey_pixels_beat_chance_but_do_not_recognise_faces():
    """Identity is structure under changing pictures: nearest neighbour on normalised grey 16-px
    faces beats chance, but pose and light keep it far from recognising everyone."""
    w = World(WorldConfig(seed=5, num_identities=10))
    rng = np.random.default_rng(0)
    vectors, pids = [], []
    for pid in range(1, 11):
        for _ in range(8):
            small = w.degrade_face(w.render_face(pid, rng).image, 16, rng)
            grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()
            vectors.append((grey - grey.mean()) / (grey.std() + 1e-6))
            pids.append(pid)
    rank1 = _nearest_neighbour_rank1(np.array(vectors), np.array(pids), np.zeros(len(pids)), cross=False)
    assert 3 * 0.1 < rank1 < 0.75


def test_colour_histograms_separate_identities_but_not_trivially():
    """Cross-camera nearest neighbour on hue-saturation histograms of the crop's central strip."""
    w = World(WorldConfig(seed=3, num_identities=20, num_cameras=3))
    rng = np.random.default_rng(5)
    crops = [w.render_person(pid, cam, rng) for pid in range(1, 21) for cam in range(3) for _ in range(2)]
    hists = []
    for crop in crops:
        hsv = cv2.cvtColor(crop.image[:, 16:48], cv2.COLOR_BGR2HSV)
        h = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
        hists.append(h / h.sum())
    rank1 = _nearest_neighbour_rank1(np.array(hists), np.array([c.pid for c in crops]),
                                     np.array([c.cam_id for c in crops]), cross=True, l1=True)
    assert 3 * (1 / 20) < rank1 < 0.9


def _nearest_neighbour_rank1(x: np.ndarray, pids: np.ndarray, cams: np.ndarray, *, cross: bool,
                             l1: bool = False) -> float:
    d = np.abs(x[:, None] - x[None]).sum(-1) if l1 else ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    if cross:
        d[cams[:, None] == cams[None]] = np.inf
    return float((pids[d.argmin(axis=1)] == pids).mean())


@pytest.fixture(scope="module")
def footage(world):
    return list(world.scene(0, 8, people_per_frame=3))


def test_scene_frames_and_ground_truth(world, footage):
    assert [f.frame_index for f in footage] == list(range(8))
    assert footage[3].timestamp == pytest.approx(0.3)
    for f in footage:
        assert f.frame.shape == (360, 640, 3) and f.frame.dtype == np.uint8 and f.cam_id == 0
        assert 1 <= len(f.persons) <= 3
        assert len({p.pid for p in f.persons}) == len(f.persons)
        for p in f.persons:
            x1, y1, x2, y2 = p.box
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360
            if 0 < x1 and x2 < 640 and y2 < 360:  # wholly in view
                assert 70 <= y2 - y1 <= 300
            seen = p.keypoints[p.keypoints[:, 2] > 0]
            assert ((seen[:, 0] >= x1 - 1) & (seen[:, 0] <= x2 + 1) & (seen[:, 1] >= y1 - 1)
                    & (seen[:, 1] <= y2 + 1)).all()
    faces = [face for f in footage for face in f.faces]
    assert faces, "the footage should show some faces"
    for f in footage:
        front = {p.pid for p in f.persons if p.viewpoint == "front"}
        for face in f.faces:
            assert face.pid in front
            assert 12 <= face.box[2] - face.box[0] <= 40
            assert face.landmarks.shape == (5, 2)
    assert list(world.scene(0, 2, people_per_frame=3))[1].frame.tobytes() == footage[1].frame.tobytes()


def test_scene_boxes_contain_the_pasted_people(world, footage):
    """Against the camera's empty view, pixels change inside the boxes and nowhere else."""
    camera = world.camera(0)
    for f in footage:
        empty = camera.apply(world.background(0), np.random.default_rng(9))
        changed = np.abs(f.frame.astype(int) - empty.astype(int)).max(axis=2) > 40
        boxes = np.zeros(changed.shape, bool)
        for p in f.persons:
            x1, y1, x2, y2 = p.box.astype(int)
            assert changed[y1:y2, x1:x2].mean() > 0.1
            boxes[max(y1 - 3, 0):y2 + 3, max(x1 - 3, 0):x2 + 3] = True
        assert changed[~boxes].mean() < 0.002


def test_scene_rejects_tiny_frames(world):
    with pytest.raises(InputError, match="frame too small"):
        next(world.scene(0, 1, frame_size=(120, 160)))
