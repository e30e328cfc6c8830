"""The pipeline behind a real NVIDIA Triton server (through PyTriton; extra ``serve``).

Models served:

- ``edgereid_pipeline``: one frame per request, ``frame`` (``UINT8 [H, W, 3]``, BGR) or ``image`` (encoded
  JPEG/PNG bytes), ``boxes`` (``FP32 [N, 4]`` xyxy), optional ``face_boxes`` (``FP32 [F, 4]``) with
  ``face_landmarks`` (``FP32 [F, 5, 2]``), ``camera_id`` (``BYTES [1]``) and optional ``timestamp`` (``FP64 [1]``)
  in; ``embeddings``, ``identities``, ``scores`` (and ``keypoints``, ``face_embeddings``, ``face_identities``,
  ``face_scores`` for the models configured) out, rows in the order of the boxes; an output with no rows is
  left out of the response (``as_numpy`` gives None). Frames and box counts differ, so Triton does not batch these
  requests; the pipeline's own batcher does (``max_batch``, ``max_wait_ms``), across concurrent requests;
- one model per configured role (``edgereid_reid_model``, ...): ready crops ``[3, H, W]`` in (the card's input),
  the card's outputs out, batched by Triton's dynamic batcher.

A request that fails (bad input, a frame that cannot be decoded) comes back as a Triton error; the server keeps
serving. Health, readiness and Prometheus metrics are Triton's own.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

import numpy as np

from edgereid.errors import EdgeReidError, InputError
from edgereid.pipeline import Pipeline
from edgereid.types import FaceBoxes, FrameResult

PIPELINE_MODEL = "edgereid_pipeline"
LOAD_ATTEMPTS = 3  # fresh servers tried when PyTriton's instances lose their start-up handshake


class ResultRouter:
    """Hands each of the pipeline's results to the request waiting for its sequence number."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._ready: dict[int, FrameResult] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._route, name="edgereid-serve-results", daemon=True)
        self._thread.start()

    def _route(self) -> None:
        while not self._stop.is_set():
            found = list(self.pipeline.results(wait=False))
            if found:
                with self._changed:
                    self._ready.update((r.sequence, r) for r in found)
                    self._changed.notify_all()
            else:
                self._stop.wait(0.001)

    def wait(self, sequence: int, timeout: float = 60.0) -> FrameResult:
        """The result of ``sequence`` (a ``TimeoutError`` after ``timeout`` seconds)."""
        with self._changed:
            if not self._changed.wait_for(lambda: sequence in self._ready, timeout):
                raise TimeoutError(f"no result for frame {sequence} within {timeout} s")
            return self._ready.pop(sequence)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _text(value: Any) -> str:
    """A ``BYTES [1]`` input as text."""
    item = np.asarray(value).reshape(-1)[0]
    return item.decode("utf-8") if isinstance(item, bytes) else str(item)


def _frame(request: dict[str, np.ndarray]) -> np.ndarray:
    """The request's frame: ``frame`` as given, or ``image`` decoded (bounded before decoding)."""
    import cv2

    if ("frame" in request) == ("image" in request):
        raise InputError("a request carries exactly one of 'frame' (UINT8 [H, W, 3]) and 'image' (encoded bytes)",
                         got=f"inputs {sorted(request)}")
    if "frame" in request:
        return request["frame"]
    data = np.asarray(request["image"]).reshape(-1)[0]
    if not isinstance(data, bytes) or not 0 < len(data) <= 64 << 20:
        raise InputError("'image' must hold one encoded JPEG/PNG of at most 64 MiB", got=f"{len(data or b'')} bytes")
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError("'image' could not be decoded", expected="JPEG or PNG bytes")
    return frame


def _names(identities: tuple[str | None, ...], rows: int) -> np.ndarray:
    """Identities as a ``BYTES`` array, one per row, ``b""`` where none was accepted (or no gallery is set)."""
    names = [(name or "").encode() for name in identities] if identities else [b""] * rows
    return np.array(names, dtype=np.bytes_) if names else np.zeros(0, dtype="S1")


def _outputs(result: FrameResult, pipeline: Pipeline) -> dict[str, np.ndarray]:
    if result.error is not None:
        raise result.error
    persons, faces = result.persons, result.faces
    out: dict[str, np.ndarray] = {}
    if persons.embeddings is not None:
        out["embeddings"] = persons.embeddings.astype(np.float32)
        out["identities"] = _names(persons.identities, len(persons))
        out["scores"] = np.asarray(persons.scores, np.float32)
    if persons.keypoints is not None:
        out["keypoints"] = persons.keypoints.astype(np.float32)
    if "face_model" in pipeline.models:
        dim = pipeline.models["face_model"].card.embedding_dim
        out["face_embeddings"] = (faces.embeddings if faces.embeddings is not None
                                  else np.zeros((0, dim), np.float32)).astype(np.float32)
        out["face_identities"] = _names(faces.identities, len(faces))
        out["face_scores"] = np.asarray(faces.scores if faces.scores is not None else np.zeros(0), np.float32)
    # PyTriton 0.7.0 cannot pass a tensor with no elements (its shared-memory store fails on it): an output with
    # no rows (a frame without faces) is left out of the response, and the client reads None for it.
    return {name: value for name, value in out.items() if value.size}


def pipeline_infer(pipeline: Pipeline, router: ResultRouter) -> Callable[[list[dict]], list[dict]]:
    """The ``edgereid_pipeline`` inference function: each request submitted, its result awaited."""

    def infer(requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        responses = []
        for request in requests:
            request = dict(request)
            faces = None
            if "face_boxes" in request:
                faces = FaceBoxes(request["face_boxes"], request.get("face_landmarks"))
            stamp = float(np.asarray(request["timestamp"]).reshape(-1)[0]) if "timestamp" in request else 0.0
            sequence = pipeline.submit(_frame(request), request["boxes"], _text(request["camera_id"]), stamp,
                                       faces=faces)
            responses.append(_outputs(router.wait(sequence), pipeline))
        return responses

    return infer


def crop_infer(backend: Any) -> Callable[..., dict[str, np.ndarray]]:
    """A per-model inference function for Triton's dynamic batcher: ready crops in, the card's outputs out."""
    from pytriton.decorators import batch

    @batch
    def infer(crops: np.ndarray) -> dict[str, np.ndarray]:
        return backend.infer(np.ascontiguousarray(crops, dtype=np.dtype(backend.card.input.dtype)))

    return infer


def bind_models(triton: Any, pipeline: Pipeline, router: ResultRouter, instances: int) -> list[str]:
    """Bind ``edgereid_pipeline`` (``instances`` concurrent requests) and one crop model per role; their names."""
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    optional = dict(optional=True)
    inputs = [Tensor(name="frame", dtype=np.uint8, shape=(-1, -1, 3), **optional),
              Tensor(name="image", dtype=np.bytes_, shape=(1,), **optional),
              Tensor(name="boxes", dtype=np.float32, shape=(-1, 4)),
              Tensor(name="face_boxes", dtype=np.float32, shape=(-1, 4), **optional),
              Tensor(name="face_landmarks", dtype=np.float32, shape=(-1, 5, 2), **optional),
              Tensor(name="camera_id", dtype=np.bytes_, shape=(1,)),
              Tensor(name="timestamp", dtype=np.float64, shape=(1,), **optional)]
    outputs = []
    if "reid_model" in pipeline.models:
        dim = pipeline.models["reid_model"].card.embedding_dim
        outputs += [Tensor(name="embeddings", dtype=np.float32, shape=(-1, dim)),
                    Tensor(name="identities", dtype=np.bytes_, shape=(-1,)),
                    Tensor(name="scores", dtype=np.float32, shape=(-1,))]
    if "keypoint_model" in pipeline.models:
        outputs.append(Tensor(name="keypoints", dtype=np.float32, shape=(-1, -1, 2)))
    if "face_model" in pipeline.models:
        dim = pipeline.models["face_model"].card.embedding_dim
        outputs += [Tensor(name="face_embeddings", dtype=np.float32, shape=(-1, dim)),
                    Tensor(name="face_identities", dtype=np.bytes_, shape=(-1,)),
                    Tensor(name="face_scores", dtype=np.float32, shape=(-1,))]
    infer = pipeline_infer(pipeline, router)
    triton.bind(PIPELINE_MODEL, [infer] * instances, inputs=inputs, outputs=outputs,
                config=ModelConfig(batching=False))
    names = [PIPELINE_MODEL]
    config = pipeline.config
    for role, model in pipeline.models.items():
        card = model.card
        name = f"edgereid_{role}"
        triton.bind(name, crop_infer(model.backend),
                    inputs=[Tensor(name="crops", dtype=np.dtype(card.input.dtype),
                                   shape=card.input.batch_shape(None)[1:])],
                    outputs=[Tensor(name=o.name, dtype=np.float32, shape=tuple(o.dims)) for o in card.outputs],
                    config=ModelConfig(max_batch_size=config.max_batch, batcher=DynamicBatcher(
                        max_queue_delay_microseconds=int(config.max_wait_ms * 1000))))
        names.append(name)
    return names


def lost_handshake_race(error: BaseException) -> bool:
    """Whether a model load failed on PyTriton's start-up handshake between the instances of one model.

    Triton starts a Python-backend model's instances in parallel; PyTriton's first instance serves its
    configuration on a Unix socket that the other instances connect to once the socket *file* exists. On a busy
    machine an instance can connect between the first one's ``bind`` and ``listen`` (connection refused) or give
    up after PyTriton's 1 s wait; the load then fails although nothing is wrong with the model. Measured once in CI
    (connection refused, 1 of 8 instances); a fresh server succeeds, so :func:`serve` retries on exactly this."""
    message = str(error)
    return "get_config_from_handshake_server" in message or "-config.sock" in message


def run_until_stopped(triton: Any, ready: Callable[[], None]) -> None:
    """Start the bound PyTriton server, call ``ready`` once it answers, and return on SIGTERM or Ctrl-C (an
    :class:`EdgeReidError` if the server dies first)."""
    import signal

    triton.run()
    stopped = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    ready()
    try:
        while not stopped.wait(0.2):
            if not triton.is_alive():
                raise EdgeReidError("the Triton server stopped", fix="see its log above")
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(config: Any, *, http_port: int = 8000, grpc_port: int = 8001, metrics_port: int = 8002,
          instances: int = 8, ready: Callable[[list[str]], None] = lambda _: None) -> None:
    """Run the pipeline of ``config`` behind Triton until SIGINT or SIGTERM; ``ready`` is called with the model
    names once the server answers."""
    from edgereid.errors import require
    from edgereid.serving.stub_env import prepare_environment

    require("pytriton", "serve", "edgereid serve (install nvidia-pytriton with --no-deps, see the README)")
    prepare_environment()
    from pytriton.triton import Triton, TritonConfig

    with Pipeline(config) as pipeline:
        router = ResultRouter(pipeline)
        try:
            triton_config = TritonConfig(http_address="127.0.0.1", http_port=http_port, grpc_address="127.0.0.1",
                                         grpc_port=grpc_port, metrics_port=metrics_port)
            for attempt in range(1, LOAD_ATTEMPTS + 1):
                with Triton(config=triton_config) as triton:
                    try:
                        names = bind_models(triton, pipeline, router, instances)
                    except Exception as exc:  # tritonclient's InferenceServerException, raised through PyTriton
                        if not lost_handshake_race(exc) or attempt == LOAD_ATTEMPTS:
                            raise
                        print(f"edgereid serve: PyTriton's instances of {PIPELINE_MODEL} lost their start-up "
                              f"handshake (attempt {attempt} of {LOAD_ATTEMPTS}); starting a fresh server",
                              file=sys.stderr, flush=True)
                        continue
                    run_until_stopped(triton, lambda: ready(names))
                    return
        finally:
            router.close()
