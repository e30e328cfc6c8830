"""Result types select rows like supervision's Detections, keeping every array row-aligned."""

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.types import Faces, FrameResult, Persons


def _persons() -> Persons:
    return Persons(boxes=np.arange(12, dtype=np.float32).reshape(3, 4), embeddings=np.eye(3, dtype=np.float32),
                   identities=("a", None, "c"), scores=np.array([0.9, np.nan, 0.4], np.float32),
                   keypoints=np.zeros((3, 2, 2), np.float32), keypoint_confidence=np.ones((3, 2), np.float32),
                   joints=np.ones((3, 1, 2), np.float32), joint_names=("nose",))


@pytest.mark.parametrize("index, rows", [(np.array([True, False, True]), [0, 2]), (slice(1, None), [1, 2]),
                                         ([2, 0], [2, 0]), (1, [1]), (np.array([], bool).reshape(0), None)])
def test_persons_select_rows(index, rows):
    persons = _persons()
    if rows is None:
        with pytest.raises(InputError, match="mask of the wrong length"):
            persons[index]
        return
    picked = persons[index]
    assert len(picked) == len(rows)
    np.testing.assert_array_equal(picked.boxes, persons.boxes[rows])
    np.testing.assert_array_equal(picked.embeddings, persons.embeddings[rows])
    np.testing.assert_array_equal(picked.scores, persons.scores[rows])
    assert picked.identities == tuple(persons.identities[r] for r in rows)
    assert picked.joints.shape == (len(rows), 1, 2) and picked.joint_names == ("nose",)


def test_faces_select_rows_and_empty_results():
    faces = Faces(np.zeros((2, 4), np.float32), np.ones((2, 8), np.float32), ("x", None),
                  np.array([0.5, np.nan], np.float32), np.array([False, True]))
    small = faces[faces.too_small]
    assert small.identities == (None,) and np.isnan(small.scores[0]) and small.too_small.tolist() == [True]
    assert len(Faces.empty()) == 0 and len(Persons.empty()) == 0
    assert Persons.empty().boxes.shape == (0, 4)
    assert len(FrameResult(0, "cam", 0.0, Persons.empty()).faces) == 0
    assert len(faces[np.zeros(2, bool)]) == 0
