"""The GPU preprocessing kernels, checked without a GPU: the same .cu source compiled for the host
(g++, kernels/host_shim.h) must match the NumPy reference; NVRTC must compile it to PTX."""

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from edgereid.card import InputSpec
from edgereid.runtime import cuda_kernels as ck
from edgereid.ops.geometry import plan_crops, validate_boxes
from edgereid.ops.reference import nv12_to_bgr_reference, preprocess_reference

# Measured: the float32 kernel and the float64 reference differ by at most 0.005 grey levels (sample
# positions in float32 at x ~ 300 px); 0.01 leaves room. The OpenCV CPU path is allowed 1.0.
MAX_ABS_ERROR_GREY_LEVELS = 0.01
BOXES = [[0, 0, 320, 240], [-10, -5, 40, 60], [290, 200, 330, 250], [100.4, 50, 101.6, 51], [60, 20, 140, 220],
         [5, 100, 300, 130]]


def _compile(tmp_path_factory, half: bool) -> ctypes.CDLL:
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not installed: the host build of the kernel source cannot be compiled")
    out = tmp_path_factory.mktemp("kernels") / ("host_half.so" if half else "host.so")
    command = [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-I", str(ck.KERNEL_DIR),
               str(ck.KERNEL_DIR / "host_build.cpp"), "-o", str(out)] + (["-DEDGE_HOST_HALF"] if half else [])
    subprocess.run(command, check=True, capture_output=True)
    return ctypes.CDLL(str(out))


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    return _compile(tmp_path_factory, half=False)


@pytest.fixture(scope="module")
def host_half(tmp_path_factory):
    return _compile(tmp_path_factory, half=True)


def run_host(library, frames, formats, plan, spec, dtype=np.float32) -> np.ndarray:
    table = ck.host_frame_table(frames, formats)
    jobs = ck.pack_jobs(plan)
    norm = ck.pack_normalise(spec)
    out = np.full((len(plan), 3, spec.height, spec.width), np.nan, dtype)
    library.edge_host_preprocess(table.ctypes.data_as(ctypes.c_void_p), jobs.ctypes.data_as(ctypes.c_void_p),
                                 ctypes.c_int(len(plan)), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(spec.height),
                                 ctypes.c_int(spec.width), norm.ctypes.data_as(ctypes.c_void_p),
                                 ctypes.c_int(int(plan.warps is not None)))
    return out


def _grey_error(a: np.ndarray, b: np.ndarray, spec: InputSpec) -> float:
    return float((np.abs(a.astype(np.float64) - b) * np.array(spec.std)[None, :, None, None]).max())


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("color_order", ["RGB", "BGR"])
def test_box_crops_match_the_reference(host, frames, resize, color_order):
    spec = InputSpec(height=64, width=48, resize=resize, color_order=color_order)
    boxes = validate_boxes(BOXES, frames[0].shape)
    plan = plan_crops(np.array([0, 1, 2, 0, 2, 0]), boxes, spec)
    out = run_host(host, frames, None, plan, spec)
    assert _grey_error(out, preprocess_reference(frames, plan, spec), spec) <= MAX_ABS_ERROR_GREY_LEVELS


def test_nv12_frames_match_the_reference_on_their_bgr_conversion(host):
    rng = np.random.default_rng(3)
    height, width = 120, 160
    nv12 = rng.integers(0, 256, (height * 3 // 2, width), dtype=np.uint8)
    spec = InputSpec(height=32, width=32, resize="letterbox")
    boxes = validate_boxes([[0, 0, 160, 120], [150, 100, 170, 130], [30, 10, 90, 100]], (height, width))
    plan = plan_crops(np.zeros(3, int), boxes, spec)
    out = run_host(host, [nv12], [ck.FORMAT_NV12], plan, spec)
    reference = preprocess_reference([nv12_to_bgr_reference(nv12, height, width)], plan, spec)
    assert _grey_error(out, reference, spec) <= MAX_ABS_ERROR_GREY_LEVELS


def test_face_warps_match_the_reference_including_off_frame_borders(host, frames):
    spec = InputSpec(height=32, width=32, mean=(127.5,) * 3, std=(128.0,) * 3)
    landmarks = np.array([[[100, 100], [130, 98], [115, 115], [104, 130], [126, 129]],
                          [[2, 3], [14, 2], [8, 9], [3, 15], [13, 15]],       # at the frame corner
                          [[300, 220], [318, 224], [309, 232], [301, 238], [316, 239]]], dtype=np.float64)
    boxes = validate_boxes([[90, 85, 140, 140], [0, 0, 18, 18], [295, 215, 320, 240]], frames[0].shape)
    plan = plan_crops(np.array([0, 0, 2]), boxes, spec, landmarks)
    out = run_host(host, frames, None, plan, spec)
    assert _grey_error(out, preprocess_reference(frames, plan, spec), spec) <= MAX_ABS_ERROR_GREY_LEVELS


def test_fp16_output_is_the_reference_rounded_to_fp16(host_half, frames):
    spec = InputSpec(height=64, width=32, resize="letterbox")
    boxes = validate_boxes(BOXES, frames[0].shape)
    plan = plan_crops(np.array([0, 1, 2, 0, 2, 0]), boxes, spec)
    out = run_host(host_half, frames, None, plan, spec, dtype=np.float16)
    reference = preprocess_reference(frames, plan, spec)
    # one FP16 rounding of a float32 value: at most half an FP16 step (plus the float32 error)
    step = np.spacing(np.abs(reference).astype(np.float16)).astype(np.float64)
    assert (np.abs(out.astype(np.float64) - reference) <= 0.5 * step + 1e-5).all()


def test_nvrtc_compiles_the_same_source_to_ptx(tmp_path):
    pytest.importorskip("cuda.bindings.nvrtc", reason="cuda-python (the gpu extra) is not installed")
    try:
        ptx = ck.compile_ptx("compute_87", cache_dir=tmp_path)
    except ck.MissingDependencyError as exc:
        pytest.skip(f"NVRTC library not available: {exc}")
    assert ".entry edge_crop_resize" in ptx and ".entry edge_warp_affine" in ptx
    assert ".target sm_87" in ptx
    assert list(tmp_path.glob("crop_resize-*.ptx"))  # cached
    assert ck.compile_ptx("compute_87", cache_dir=tmp_path) == ptx


def test_struct_layouts_match_the_c_structs():
    assert ck.FRAME_DTYPE.itemsize == 24 and ck.JOB_DTYPE.itemsize == 60 and ck.NORMALISE_DTYPE.itemsize == 40


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_device_box_planning_matches_plan_crops(host, frames, resize):
    rng = np.random.default_rng(7)
    spec = InputSpec(height=64, width=48, resize=resize)
    raw = np.concatenate([rng.uniform(-30, 340, (40, 2)), rng.uniform(5, 200, (40, 2))], 1)
    raw[:, 2:] += raw[:, :2]
    frame_index = rng.integers(0, 3, 40)
    keep = [i for i in range(40) if _has_area(raw[i], frames[frame_index[i]].shape)]
    boxes = np.concatenate([raw[keep], frame_index[keep, None]], 1).astype(np.float32)
    table = ck.host_frame_table(frames)
    jobs = np.zeros(len(boxes), ck.JOB_DTYPE)
    host.edge_host_plan(boxes.ctypes.data_as(ctypes.c_void_p), table.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(3),
                        jobs.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(len(boxes)), ctypes.c_int(spec.height),
                        ctypes.c_int(spec.width), ctypes.c_int(int(resize == "letterbox")))
    for i, (row, f) in enumerate(zip(boxes, frame_index[keep])):
        valid = validate_boxes(row[None, :4].astype(np.float64), frames[f].shape)
        plan = plan_crops(np.array([f]), valid, spec)
        assert jobs["frame"][i] == f
        np.testing.assert_array_equal(jobs["box"][i], plan.boxes[0])
        np.testing.assert_array_equal(jobs["place"][i], plan.placement[0])


def _has_area(box, shape) -> bool:
    x1, y1, x2, y2 = np.rint(np.clip(box, 0, [shape[1], shape[0], shape[1], shape[0]]))
    return x2 > x1 and y2 > y1


def test_nvcc_compiles_the_kernel_source(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on the PATH")
    result = subprocess.run([nvcc, "-arch=sm_87", "-c", str(ck.KERNEL_SOURCE), "-o", str(tmp_path / "k.o")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_device_frame_table_over_packed_frames(host):
    packed = np.zeros((3, 20, 30, 3), np.uint8)
    table = np.zeros(3, ck.FRAME_DTYPE)
    host.edge_host_pack_frames(packed.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(3), ctypes.c_int(20),
                               ctypes.c_int(30), table.ctypes.data_as(ctypes.c_void_p))
    assert table["data"].tolist() == [packed.ctypes.data + i * 20 * 30 * 3 for i in range(3)]
    assert table["pitch"].tolist() == [90] * 3 and table["height"].tolist() == [20] * 3
    # a frame index beyond the table is clamped, never read past it
    boxes = np.array([[0, 0, 10, 10, 7]], np.float32)
    jobs = np.zeros(1, ck.JOB_DTYPE)
    host.edge_host_plan(boxes.ctypes.data_as(ctypes.c_void_p), table.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(3),
                        jobs.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(1), ctypes.c_int(8), ctypes.c_int(8),
                        ctypes.c_int(0))
    assert jobs["frame"][0] == 2
