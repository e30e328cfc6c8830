"""`edgereid serve` on a real Triton server (PyTriton's bundled tritonserver, Python backend, on this CPU), started
and stopped by the test on loopback ports; HTTP and gRPC clients from tritonclient."""

import socket
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytriton", reason="edgereid serve needs nvidia-pytriton (extra serve)")
pytest.importorskip("tritonclient.http", reason="the test's clients come from tritonclient")
pytest.importorskip("tritonclient.grpc", reason="the test's clients come from tritonclient")

import edgereid  # noqa: E402
from edgereid.errors import EdgeReidError  # noqa: E402
from edgereid.serving.process import ServerProcess  # noqa: E402
from edgereid.serving.stub_env import stub_environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REID, FACE = ROOT / "samples/models/reid/model.onnx", ROOT / "samples/models/face/model.onnx"
BOXES = np.array([[20, 20, 80, 200], [100, 30, 170, 220]], np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        stub_environment()
    except EdgeReidError as exc:
        pytest.skip(f"no NumPy-1 environment for Triton's Python-backend stub: {exc.problem}")
    config = tmp_path_factory.mktemp("serve") / "pipeline.yaml"
    config.write_text(f"reid_model: {REID}\nface_model: {FACE}\nmax_batch: 32\nmax_wait_ms: 5\n")
    started = ServerProcess(config)
    yield started
    if started.process.poll() is None:
        started.kill()


def _inputs(module, frame=None, boxes=BOXES, camera=b"cam0", image=None):
    inputs = []
    for name, value, kind in (("frame", frame, "UINT8"), ("boxes", boxes, "FP32"),
                              ("camera_id", np.array([camera], dtype=object), "BYTES"),
                              ("image", None if image is None else np.array([image], dtype=object), "BYTES")):
        if value is not None:
            tensor = module.InferInput(name, list(value.shape), kind)
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
    return inputs


def _frames(count):
    rng = np.random.default_rng(1)
    return [cv2.resize(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), (320, 240)) for _ in range(count)]


def test_concurrent_http_and_grpc_requests_match_the_pipeline_in_process(server):
    import tritonclient.grpc as grpc_client
    import tritonclient.http as http_client

    http, grpc = server.http, server.grpc
    frames = _frames(8)
    with edgereid.Pipeline({"reid_model": str(REID), "face_model": str(FACE)}) as pipeline:
        expected = [r.persons.embeddings for r in pipeline.process(frames, [BOXES] * len(frames), "cam0")]
    got, failures = {}, []

    def client(worker):
        module = http_client if worker % 2 == 0 else grpc_client
        url = f"127.0.0.1:{http if module is http_client else grpc}"
        connection = module.InferenceServerClient(url)
        try:
            for i in range(50):
                index = (worker + i) % len(frames)
                result = connection.infer("edgereid_pipeline", _inputs(module, frames[index]))
                got[worker, i] = (index, result.as_numpy("embeddings"))
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(got) == 400
    for index, embeddings in got.values():
        np.testing.assert_allclose(embeddings, expected[index], atol=1e-5)


def test_an_encoded_image_a_crop_model_and_a_bad_request(server):
    import tritonclient.http as http_client
    from tritonclient.utils import InferenceServerException

    http = server.http
    connection = http_client.InferenceServerClient(f"127.0.0.1:{http}")
    frame = _frames(1)[0]
    raw = connection.infer("edgereid_pipeline", _inputs(http_client, frame)).as_numpy("embeddings")
    png = cv2.imencode(".png", frame)[1].tobytes()
    np.testing.assert_allclose(connection.infer("edgereid_pipeline", _inputs(http_client, None, image=png))
                               .as_numpy("embeddings"), raw, atol=1e-6)
    with pytest.raises(InferenceServerException, match="boxes"):
        connection.infer("edgereid_pipeline", _inputs(http_client, frame, boxes=np.ones((2, 5), np.float32)))
    with pytest.raises(InferenceServerException, match="exactly one of 'frame'"):
        connection.infer("edgereid_pipeline", _inputs(http_client, frame, image=png))
    crops = np.random.default_rng(2).standard_normal((3, 3, 128, 64)).astype(np.float32)
    tensor = http_client.InferInput("crops", list(crops.shape), "FP32")
    tensor.set_data_from_numpy(crops)
    from edgereid.runtime.backends import load_backend

    with load_backend(REID) as backend:
        np.testing.assert_allclose(connection.infer("edgereid_reid_model", [tensor]).as_numpy("embedding"),
                                   backend.infer(crops)["embedding"], atol=1e-5)
    assert connection.is_server_ready()  # still serving after the errors


def test_sigterm_stops_the_server_cleanly(server):
    assert server.stop() == 0, "".join(server.lines[-20:])
    assert "stopped" in "".join(server.lines)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.http), timeout=2)


def test_a_missing_stub_environment_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEREID_TRITON_STUB_ENV", str(tmp_path / "nowhere"))
    with pytest.raises(EdgeReidError, match="NumPy 1.x") as caught:
        stub_environment()
    assert "pip install 'numpy<2' pyzmq" in caught.value.fix and "nowhere" in caught.value.got


def test_only_the_start_up_handshake_race_is_retried():
    from tritonclient.utils import InferenceServerException

    from edgereid.serving.triton import lost_handshake_race

    # the message CI's Triton gave when one of the pipeline's instances connected too early (2026-12-06)
    refused = InferenceServerException(
        "[400] load failed for model 'edgereid_pipeline': version 1 is at UNAVAILABLE state: Internal: "
        "TritonModelException: Model initialize error: Traceback (most recent call last):\n"
        '  File "/tmp/folderKOpRyD/1/model.py", line 425, in initialize\n'
        "    inference_handler_config = get_config_from_handshake_server(handshake_socket)\n"
        "ConnectionRefusedError: [Errno 111] Connection refused")
    late = TimeoutError("Timeout occurred while waiting for config file /tmp/w/edgereid_pipeline-config.sock")
    broken = InferenceServerException("[400] load failed for model 'edgereid_reid_model': Model initialize error: "
                                      "ValueError: InferenceHandler config is not serializable")
    assert lost_handshake_race(refused) and lost_handshake_race(late)
    assert not lost_handshake_race(broken)
