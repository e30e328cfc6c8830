"""The Python-backend preprocessing of an `edgereid triton-repo` repository loaded and answering in a real Triton server
(PyTriton's bundled tritonserver on this CPU, `edgereid serve --repository`), over HTTP and gRPC."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytriton", reason="edgereid serve needs nvidia-pytriton (extra serve)")
http = pytest.importorskip("tritonclient.http", reason="the test's clients come from tritonclient")
grpc = pytest.importorskip("tritonclient.grpc", reason="the test's clients come from tritonclient")

from tritonclient.utils import InferenceServerException  # noqa: E402

from edgereid.card import read_card  # noqa: E402
from edgereid.errors import EdgeReidError  # noqa: E402
from edgereid.ops.geometry import plan_crops, validate_boxes  # noqa: E402
from edgereid.ops.reference import preprocess_reference  # noqa: E402
from edgereid.serving.process import ServerProcess  # noqa: E402
from edgereid.serving.repository import write_model_repository  # noqa: E402
from edgereid.serving.repository_server import STUB_IMPORTS, check_stub_imports, lend_package  # noqa: E402
from edgereid.serving.stub_env import stub_environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = [ROOT / "samples" / "models" / task / "model.onnx" for task in ("reid", "keypoints", "face")]
BOXES = np.array([[10.2, 20, 100, 220], [200, 100, 330, 260], [-5, 5, 30, 15]], np.float32)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    try:
        env = stub_environment()
        check_stub_imports(env, str(lend_package(tmp_path_factory.mktemp("lent"))))
    except EdgeReidError as exc:
        pytest.skip(f"no stub environment for Triton's Python backend with {STUB_IMPORTS!r}: {exc.problem}")
    repo = tmp_path_factory.mktemp("repo")
    write_model_repository(MODELS, repo)
    server = ServerProcess(repository=repo)
    yield server
    if server.process.poll() is None:
        server.kill()


def _request(module, frame, boxes):
    inputs = [module.InferInput("frame", list(frame.shape), "UINT8"), module.InferInput("boxes", list(boxes.shape),
                                                                                         "FP32")]
    inputs[0].set_data_from_numpy(frame)
    inputs[1].set_data_from_numpy(boxes)
    return inputs


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.parent.name)
def test_the_preprocessing_answers_in_the_real_server_like_the_numpy_reference(served, frames, model):
    card = read_card(model)
    clipped = validate_boxes(BOXES, frames[0].shape)
    reference = preprocess_reference([frames[0]], plan_crops(np.zeros(len(clipped), np.int64), clipped, card.input),
                                     card.input)
    scale = np.array(card.input.std, np.float32)[None, :, None, None]
    for module, port in ((http, served.http), (grpc, served.grpc)):
        client = module.InferenceServerClient(f"127.0.0.1:{port}")
        assert client.is_model_ready(f"{card.name}_preprocess")
        crops = client.infer(f"{card.name}_preprocess", _request(module, frames[0], BOXES)).as_numpy("crops")
        assert crops.shape == reference.shape and crops.dtype == np.dtype(card.input.dtype)
        assert (np.abs(crops - reference) * scale).max() <= 1.0  # within one grey level of the reference


def test_a_bad_request_fails_alone_and_the_models_without_a_backend_here_are_named(served, frames):
    name = read_card(MODELS[0]).name
    client = http.InferenceServerClient(f"127.0.0.1:{served.http}")
    with pytest.raises(InferenceServerException, match="box"):
        client.infer(f"{name}_preprocess", _request(http, frames[0], np.array([[5, 5, 1, 1]], np.float32)))
    crops = client.infer(f"{name}_preprocess", _request(http, frames[0], BOXES[:1])).as_numpy("crops")
    assert len(crops) == 1
    said = "".join(served.lines)
    assert f"not loaded (their backend is not in PyTriton's CPU server" in said and f"{name}_ensemble" in said
    assert not client.is_model_ready(name)  # the ONNX Runtime model needs NVIDIA's server images
    assert served.stop() == 0
