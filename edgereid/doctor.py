"""What is installed, what the machine offers, and which features are missing what."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform

# (distribution names to try, importable module, feature it enables, extra that installs it)
COMPONENTS = (
    (("numpy",), "numpy", "everything", "core"),
    (("onnxruntime", "onnxruntime-gpu"), "onnxruntime", "the default CPU runtime", "core"),
    (("opencv-python-headless", "opencv-python"), "cv2", "preprocessing and video", "core"),
    (("torch",), "torch", "training, distillation, export", "train"),
    (("onnx",), "onnx", "export and `card attach`", "export"),
    (("safetensors",), "safetensors", "checkpoints", "train"),
    (("cuda-python", "cuda-bindings"), "cuda.bindings", "GPU buffers, streams and NVRTC kernels", "gpu"),
    (("tensorrt", "tensorrt-cu12", "tensorrt-cu13"), "tensorrt", "TensorRT engines", "trt"),
    (("tensorrt-rtx-cu12", "tensorrt-rtx"), "tensorrt_rtx", "TensorRT-RTX parse/build checks", "trt-rtx"),
    (("nvidia-cuda-nvrtc", "nvidia-cuda-nvrtc-cu12"), "nvidia", "NVRTC: compiling the preprocessing kernels", "gpu"),
    (("faiss-cpu", "faiss-gpu"), "faiss", "very large galleries", "faiss"),
    (("openvino",), "openvino", "the fast x86 CPU backend (BF16, INT8)", "openvino"),
    (("pymilvus",), "pymilvus", "galleries shared through Milvus", "milvus"),
)


def _version(distributions: tuple[str, ...]) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _gpu_line() -> str:
    if importlib.util.find_spec("cuda") is None or importlib.util.find_spec("cuda.bindings") is None:
        return "GPU: unknown (cuda-python not installed)"
    from cuda.bindings import runtime

    error, count = runtime.cudaGetDeviceCount()
    if error != runtime.cudaError_t.cudaSuccess or not count:
        return f"GPU: none usable ({error.name})"
    names = []
    for index in range(count):
        _, props = runtime.cudaGetDeviceProperties(index)
        names.append(f"{props.name.decode(errors='replace')} (sm_{props.major}{props.minor})")
    _, driver = runtime.cudaDriverGetVersion()
    return f"GPU: {', '.join(names)}; driver CUDA {driver // 1000}.{driver % 1000 // 10}"


def facts() -> dict[str, object]:
    """What ``edgereid doctor`` finds, as data: platform, every component's version (None: missing), the ONNX
    Runtime providers, the GPU line and the installs that would enable missing features."""
    components = {}
    missing: list[str] = []
    for distributions, module, feature, extra in COMPONENTS:
        version = _version(distributions)
        present = version is not None and importlib.util.find_spec(module.split(".")[0]) is not None
        components[distributions[0]] = {"version": version if present else None, "feature": feature, "extra": extra}
        if not present and extra != "core":
            missing.append(f"{feature}: pip install 'edgereid[{extra}]'")
    providers: list[str] = []
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    return {"python": platform.python_version(), "system": f"{platform.system()} {platform.machine()}",
            "components": components, "onnxruntime_providers": providers, "gpu": _gpu_line(), "missing": missing}


def report() -> str:
    """A human-readable report, one line per component."""
    found = facts()
    lines = [f"Python {found['python']} on {found['system']}"]
    for name, component in found["components"].items():
        lines.append(f"  {name:24s} {component['version'] or 'missing':14s} {component['feature']}")
    if found["onnxruntime_providers"]:
        lines.append(f"  onnxruntime providers: {', '.join(found['onnxruntime_providers'])}")
    lines.append(str(found["gpu"]))
    if found["missing"]:
        lines.append("Missing for optional features:")
        lines += [f"  - {m}" for m in found["missing"]]
    return "\n".join(lines)
