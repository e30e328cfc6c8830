"""insightface's RecordIO training files and verification .bin sets, read from hand-made files in their formats
(no mxnet, no unpickling of anything but plain lists); the 10-fold verification accuracy."""

import pickle
import struct

import cv2
import numpy as np
import pytest

from edgereid.data.face_records import IMAGE_HEADER, RECORD_MAGIC, RecordFile, read_verification_bin
from edgereid.errors import InputError
from edgereid.eval.face_verification import verification_accuracy


def _jpeg(value: int) -> bytes:
    return cv2.imencode(".jpg", np.full((112, 112, 3), value, np.uint8))[1].tobytes()


def _record(payload: bytes) -> bytes:
    padding = (-len(payload)) % 4
    return struct.pack("<II", RECORD_MAGIC, len(payload)) + payload + b"\0" * padding


def _write_rec(folder, entries):
    """entries: (key, labels, image bytes); a single label goes in the header, several after it (flag = count)."""
    rec, lines = bytearray(), []
    for key, labels, image in entries:
        if len(labels) == 1:
            payload = IMAGE_HEADER.pack(0, labels[0], key, 0) + image
        else:
            payload = IMAGE_HEADER.pack(len(labels), 0.0, key, 0) + struct.pack(f"<{len(labels)}f", *labels) + image
        lines.append(f"{key}\t{len(rec)}")
        rec += _record(payload)
    (folder / "train.rec").write_bytes(bytes(rec))
    (folder / "train.idx").write_text("\n".join(lines) + "\n")
    return folder / "train.rec"


def test_recordio_images_labels_and_the_header_record(tmp_path):
    images = [(key, (float(key // 2),), _jpeg(40 * key)) for key in range(1, 5)]
    rec = _write_rec(tmp_path, [(0, (5.0, 7.0), b"")] + images + [(5, (1.0, 3.0), b"")])
    records = RecordFile(rec)
    assert len(records) == 6 and list(records.image_keys()) == [1, 2, 3, 4]
    third = records.read(3)
    assert third.labels == (1.0,) and third.decode().shape == (112, 112, 3)
    assert abs(int(third.decode().mean()) - 120) <= 2  # the image written under key 3
    assert records.read(5).labels == (1.0, 3.0)  # an identity header: the range of its image keys
    with pytest.raises(InputError, match="has no record 9"):
        records.read(9)


def test_recordio_refuses_broken_records_and_indexes(tmp_path):
    rec = _write_rec(tmp_path, [(1, (0.0,), _jpeg(10))])
    data = bytearray(rec.read_bytes())
    data[4:8] = struct.pack("<I", 1 << 28)  # a length far past the end of the file
    rec.write_bytes(bytes(data))
    with pytest.raises(InputError, match="impossible length"):
        RecordFile(rec).read(1)
    (tmp_path / "train.idx").write_text("1\t999999\n")
    with pytest.raises(InputError, match="points past the end"):
        RecordFile(rec)


def _python2_pickle(images: list[bytes], same: list[bool]) -> bytes:
    """The stream Python 2's pickle (protocol 2) writes for (list of str, list of bool), as insightface's .bin
    files were made: images as BINSTRING, no global anywhere."""
    stream = b"\x80\x02]q\x00("
    for image in images:
        stream += b"T" + struct.pack("<I", len(image)) + image
    stream += b"e]q\x01(" + b"".join(b"\x88" if flag else b"\x89" for flag in same) + b"e\x86q\x02."
    return stream


def test_verification_bin_of_plain_lists_is_read_and_anything_else_refused(tmp_path):
    pairs = [_jpeg(v) for v in (10, 12, 200, 40)]
    path = tmp_path / "lfw.bin"
    for data in (_python2_pickle(pairs, [True, False]), pickle.dumps((pairs, [True, False]), protocol=4)):
        path.write_bytes(data)
        dataset = read_verification_bin(path)
        assert dataset.name == "lfw" and dataset.same.tolist() == [True, False] and len(dataset.decode()) == 4
        assert dataset.images == pairs
    path.write_bytes(pickle.dumps((pairs, np.array([True, False])), protocol=4))  # a NumPy array needs a global: refused
    with pytest.raises(InputError, match="refused: the file asks for numpy"):
        read_verification_bin(path)

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path.write_bytes(pickle.dumps((pairs, [True, Payload()]), protocol=4))
    with pytest.raises(InputError, match="refused: the file asks for builtins.print"):
        read_verification_bin(path)
    path.write_bytes(pickle.dumps((pairs, [True]), protocol=4))
    with pytest.raises(InputError, match="two encoded images per same-person flag"):
        read_verification_bin(path)


def test_ten_fold_verification_accuracy():
    rng = np.random.default_rng(0)
    anchors = rng.standard_normal((200, 16))
    same = np.arange(200) % 2 == 0
    others = np.where(same[:, None], anchors + 0.1 * rng.standard_normal((200, 16)), rng.standard_normal((200, 16)))
    perfect = verification_accuracy(anchors, others, same)
    assert perfect["accuracy"] >= 0.99 and len(perfect["thresholds"]) == 10
    flipped = verification_accuracy(anchors, others, ~same)  # labels that contradict the embeddings
    assert flipped["accuracy"] <= 0.6
    with pytest.raises(InputError, match="verification needs"):
        verification_accuracy(anchors[:5], others[:5], same[:5])
