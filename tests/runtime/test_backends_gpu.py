"""The torch backend (runs here), and the GPU backends' input checks; GPU-only paths skip with the reason."""

import numpy as np
import pytest

from edgereid.errors import BackendError, InputError
from edgereid.runtime import cuda
from edgereid.runtime.backends import load_backend
from edgereid.engine_file import BatchProfile, gpu_available
from edgereid.runtime.gpu_preprocess import frame_layout



@pytest.mark.parametrize("name", ["test_reid", "test_keypoints", "test_face"])
def test_torch_backend_matches_onnx_runtime(tiny_models, name):
    pytest.importorskip("torch")
    torch_backend = load_backend(tiny_models[name]["checkpoint"])
    onnx_backend = load_backend(tiny_models[name]["onnx"])
    assert torch_backend.card.outputs == onnx_backend.card.outputs and torch_backend.name == "torch"
    spec = onnx_backend.card.input
    batch = np.random.default_rng(0).normal(size=(3, 3, spec.height, spec.width)).astype(np.float32)
    ours, theirs = torch_backend.infer(batch), onnx_backend.infer(batch)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-4, atol=1e-4)
    with pytest.raises(InputError, match="wrong shape"):
        torch_backend.infer(batch[:, :, :4])


def test_torch_backend_refuses_a_missing_gpu(tiny_models):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    from edgereid.runtime.backends.torch import TorchBackend

    with pytest.raises(BackendError, match="cannot use device 'cuda'"):
        TorchBackend(tiny_models["test_face"]["checkpoint"], device="cuda")


def test_batches_outside_the_profile_are_refused():
    BatchProfile.parse("1:8:32").check(32)
    with pytest.raises(InputError, match="outside the engine's profile 1:8:32"):
        BatchProfile.parse("1:8:32").check(33)
    with pytest.raises(InputError, match="outside"):
        BatchProfile.parse("4:8:32").check(1)


def test_device_frames_of_the_wrong_dtype_or_layout_are_refused():
    class FakeDeviceFrame:  # the interface a CuPy/Numba/torch CUDA array exposes; no GPU needed to read it
        def __init__(self, shape, typestr):
            self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (1 << 20, False),
                                             "version": 3, "strides": None}

    view = cuda.device_array(FakeDeviceFrame((120, 160, 3), "|u1"))
    assert frame_layout(view.shape, view.dtype, 0, "frame 0") == (120, 160) and view.pitch == 480
    with pytest.raises(InputError, match="frame 0 has the wrong dtype"):
        bad = cuda.device_array(FakeDeviceFrame((120, 160, 3), "<f4"))
        frame_layout(bad.shape, bad.dtype, 0, "frame 0")
    with pytest.raises(InputError, match="not an NV12 frame"):
        frame_layout((121, 160), np.uint8, 1, "frame 1")
    with pytest.raises(InputError, match="not a device array"):
        cuda.device_array([1, 2, 3])


def test_engine_files_without_a_gpu_fail_cleanly(tiny_models, tmp_path):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx-cu12 is not installed")
    if gpu_available()[0]:
        pytest.skip("a GPU is present: the GPU test below covers loading")
    from edgereid.exporting.engine import build_engine

    engine = tmp_path / "face.engine"
    build_engine(tiny_models["test_face"]["onnx"], engine, flavour="tensorrt_rtx", compute_capability="8.6")
    with pytest.raises(BackendError, match="needs a CUDA GPU"):
        load_backend(engine)


@pytest.mark.gpu
def test_gpu_preprocessor_matches_the_reference(frames):
    from edgereid.card import InputSpec
    from edgereid.runtime.gpu_preprocess import GpuPreprocessor
    from edgereid.ops.geometry import plan_crops, validate_boxes
    from edgereid.ops.reference import preprocess_reference

    spec = InputSpec(height=64, width=48, resize="letterbox")
    boxes = validate_boxes([[0, 0, 320, 240], [-10, -5, 40, 60], [60, 20, 140, 220]], frames[0].shape)
    plan = plan_crops(np.array([0, 1, 2]), boxes, spec)
    stream = cuda.Stream()
    out = cuda.DeviceBuffer(3 * 3 * 64 * 48 * 4)
    pre = GpuPreprocessor(spec, 8)
    pre.upload(frames, stream)
    pre.run(plan, out.ptr, stream)
    host = np.zeros((3, 3, 64, 48), np.float32)
    out.download(host, stream)
    stream.synchronize()
    assert np.abs(host - preprocess_reference(frames, plan, spec)).max() * 58.4 < 0.01


def _device_free_bytes() -> int:
    free, _total = cuda.check(cuda._runtime().cudaMemGetInfo(), "cudaMemGetInfo")
    return int(free)


@pytest.mark.gpu
def test_gpu_preprocessing_releases_its_device_memory(frames):
    """100 open/use/close cycles of the GPU preprocessing: device memory returns to where it was."""
    from edgereid.card import InputSpec
    from edgereid.ops.geometry import plan_crops, validate_boxes
    from edgereid.runtime.gpu_preprocess import DeviceFrames, GpuPreprocessor

    spec = InputSpec(height=256, width=128)
    plan = plan_crops(np.array([0]), validate_boxes([[0, 0, 120, 200]], frames[0].shape), spec)
    stream = cuda.Stream()
    out = cuda.DeviceBuffer(32 * 3 * 256 * 128 * 4)
    GpuPreprocessor(spec, 32).close()  # compiles once (the NVRTC cache) and creates the context
    before = _device_free_bytes()
    for _ in range(100):
        shared = DeviceFrames()
        shared.upload(frames, stream)
        pre = GpuPreprocessor(spec, 32)
        pre.run(plan, out.ptr, stream, shared)
        stream.synchronize()
        pre.close()
        shared.close()
    assert before - _device_free_bytes() < 8 << 20
    out.free()
    stream.close()
