"""The engine file contract: a TensorRT engine and the sidecar JSON beside it.

The builder (:mod:`edgereid.exporting.engine`) writes through this module and the TensorRT backend
(:mod:`edgereid.runtime.backends.tensorrt`) reads through it; neither imports the other. The sidecar
``<engine>.json`` holds the card, the :class:`EngineKey` (ONNX hash, TensorRT flavour and version, GPU
compute capability, precision, batch profile), the engine's SHA-256 and size, the plugin libraries it
needs (bare file names beside the engine, covered by their SHA-256) and the command that rebuilds it.
:func:`check_engine` refuses an engine that is truncated, altered, or built for another TensorRT or GPU.

Also here, because both sides need them and neither may import the other: the TensorRT import helper
(feature detection: ``tensorrt`` first, then ``tensorrt_rtx``) and the GPU capability query.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgereid.card import ModelCard, file_sha256
from edgereid.errors import BackendError, ExportError, InputError, MissingDependencyError
from edgereid.fileio import atomic_write_text

FLAVOURS = ("tensorrt", "tensorrt_rtx")

SIDECAR_VERSION = 1

# A sidecar is a few kilobytes of JSON; anything much larger is not one of ours.
MAX_SIDECAR_BYTES = 1 << 20


def gpu_properties() -> tuple[Any, str]:
    """``(cudaDeviceProp of GPU 0, "")`` when a CUDA device can be used, else ``(None, why)``."""
    try:
        runtime = importlib.import_module("cuda.bindings.runtime")
    except ImportError:
        return None, "cuda-python is not installed (pip install 'edgereid[gpu]')"
    error, count = runtime.cudaGetDeviceCount()
    if int(error) != 0:
        return None, f"cudaGetDeviceCount: {error}"
    if not count:
        return None, "no CUDA device"
    error, props = runtime.cudaGetDeviceProperties(0)
    if int(error) != 0:
        return None, f"cudaGetDeviceProperties: {error}"
    return props, ""


def gpu_available() -> tuple[bool, str]:
    """``(True, name)`` when a CUDA device can be used, else ``(False, why)``."""
    props, why = gpu_properties()
    if props is None:
        return False, why
    return True, props.name.decode(errors="replace").rstrip("\x00")


def compute_capability() -> str | None:
    """``"8.7"``-style compute capability of GPU 0, or None without a usable GPU."""
    props, _ = gpu_properties()
    return None if props is None else f"{props.major}.{props.minor}"


def import_tensorrt(prefer: str | None = None):
    """``(module, flavour)`` of the first importable TensorRT flavour (or ``prefer``)."""
    for flavour in ([prefer] if prefer else FLAVOURS):
        if flavour not in FLAVOURS:
            raise ExportError(f"unknown TensorRT flavour '{flavour}'", expected=str(FLAVOURS))
        try:
            return importlib.import_module(flavour), flavour
        except ImportError:
            continue
    raise MissingDependencyError(
        "tensorrt", "trt", "building or loading TensorRT engines", got=f"none of {FLAVOURS} can be imported",
        fix="pip install 'edgereid[trt]' on a machine with NVIDIA's index (or JetPack's python3-libnvinfer); "
            "pip install 'edgereid[trt-rtx]' (tensorrt-rtx-cu12 from PyPI) builds ahead of time without a GPU")

@dataclass(frozen=True)


class BatchProfile:
    """The optimisation profile's batch sizes: engines accept ``min <= batch <= max`` and are tuned for ``opt``."""
    min: int = 1
    opt: int = 8
    max: int = 32

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ExportError("bad batch profile", expected="1 <= MIN <= OPT <= MAX", got=f"{self}")

    @classmethod
    def parse(cls, text: str) -> "BatchProfile":
        """``"MIN:OPT:MAX"`` (the ``--batch`` flag and the sidecar's ``key.profile``)."""
        try:
            low, opt, high = (int(v) for v in str(text).split(":"))
        except ValueError as exc:
            raise ExportError(f"bad batch profile '{text}'", expected="MIN:OPT:MAX, e.g. 1:8:32") from exc
        return cls(low, opt, high)

    def check(self, batch: int) -> None:
        """A batch must lie inside the profile; outside it, an error with the profile that would fit."""
        if not self.min <= batch <= self.max:
            low, high = min(self.min, batch), max(self.max, batch)
            wider = f"{low}:{min(max(self.opt, low), high)}:{high}"
            raise InputError(f"batch of {batch} crops is outside the engine's profile {self.text()}",
                             expected=f"{self.min} <= batch <= {self.max}",
                             fix=f"split or pad the batch (max_batch: {self.max}), or rebuild with --batch {wider}")

    def text(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"

@dataclass(frozen=True)


class EngineKey:
    """Everything an engine is specific to; two builds with equal keys give interchangeable engines."""
    onnx_sha256: str
    flavour: str
    trt_version: str
    compute_capability: str
    precision: str
    profile: str

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]


def sidecar_path(engine: str | Path) -> Path:
    """Where the sidecar of ``engine`` lives: ``<engine>.json``."""
    return Path(str(engine) + ".json")


def write_sidecar(engine: Path, plan: bytes, card: ModelCard, key: EngineKey, *, gate: dict[str, Any] | None,
                  notes: str, plugins: tuple[Path, ...], rebuild: str) -> Path:
    """The sidecar of an engine about to be written from ``plan``; plugin libraries are recorded by bare
    name (they must sit beside the engine) and SHA-256."""
    sidecar = {"sidecar_version": SIDECAR_VERSION, "card": card.to_dict(), "key": asdict(key),
               "engine_sha256": hashlib.sha256(plan).hexdigest(), "engine_bytes": len(plan),
               "plugins": [Path(p).name for p in plugins],
               "plugin_sha256": {Path(p).name: file_sha256(Path(p)) for p in plugins},
               "gate": gate, "precision_notes": notes, "rebuild": rebuild}
    return atomic_write_text(sidecar_path(engine), json.dumps(sidecar, indent=1))


def read_sidecar(engine: str | Path) -> dict[str, Any]:
    """The sidecar of ``engine``; an error if it is missing, oversized or unreadable."""
    path = sidecar_path(engine)
    if not path.is_file():
        raise BackendError(f"engine {engine} has no sidecar {path.name}",
                           fix="build engines with export/build_engine.py, which writes it")
    size = path.stat().st_size
    if size > MAX_SIDECAR_BYTES:
        raise BackendError(f"sidecar {path} is too large to be an engine sidecar",
                           expected=f"at most {MAX_SIDECAR_BYTES} bytes", got=f"{size} bytes")
    try:
        sidecar = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackendError(f"sidecar {path} is not valid JSON", got=str(exc)) from exc
    if not isinstance(sidecar, dict) or not isinstance(sidecar.get("key"), dict):
        raise BackendError(f"sidecar {path} is not an edgereid engine sidecar", expected="a JSON object with 'key'",
                           fix="rebuild the engine with export/build_engine.py")
    return sidecar


def sidecar_flavour(engine: str | Path) -> str | None:
    """The TensorRT flavour an engine was built with, from its sidecar (None when it names none)."""
    return read_sidecar(engine)["key"].get("flavour")


def plugin_libraries(engine: str | Path, sidecar: dict[str, Any]) -> list[Path]:
    """The plugin libraries an engine needs, each a bare file name beside the engine whose SHA-256 matches
    the sidecar's. Anything else (a path, ``..``, a changed file) is refused: loading a library runs it."""
    engine = Path(engine)
    hashes = sidecar.get("plugin_sha256") or {}
    libraries = []
    for name in sidecar.get("plugins", []):
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise BackendError(f"sidecar of {engine} names a plugin outside the engine's folder",
                               expected="bare library file names beside the engine", got=repr(name),
                               fix="rebuild the engine with export/build_engine.py --plugin LIB")
        library = engine.parent / name
        if name not in hashes or not library.is_file() or file_sha256(library) != hashes[name]:
            raise BackendError(f"plugin library {library} is missing or differs from the one the engine was built with",
                               expected=f"SHA-256 {hashes.get(name, '(not recorded)')}",
                               fix="rebuild the engine with export/build_engine.py --plugin LIB")
        libraries.append(library)
    return libraries


def check_engine(engine: str | Path, trt_version: str, flavour: str, compute_capability: str | None) -> dict[str, Any]:
    """Refuse an engine that is truncated or altered, or was built for another TensorRT or GPU."""
    engine = Path(engine)
    if not engine.is_file():
        raise BackendError(f"engine not found: {engine}", fix="check the path or build it")
    sidecar = read_sidecar(engine)
    rebuild = f"rebuild with: {sidecar.get('rebuild', 'python export/build_engine.py --model M.onnx --out ' + str(engine))}"
    size = engine.stat().st_size
    if size != sidecar["engine_bytes"] or file_sha256(engine) != sidecar["engine_sha256"]:
        raise BackendError(f"engine {engine} is truncated or was altered after its build",
                           expected=f"{sidecar['engine_bytes']} bytes with the recorded SHA-256", got=f"{size} bytes",
                           fix=rebuild)
    key = sidecar["key"]
    built = (key["flavour"], key["trt_version"], key["compute_capability"])
    here = (flavour, trt_version, compute_capability)
    if built[:2] != here[:2] or (compute_capability is not None and built[2] != compute_capability):
        raise BackendError(f"engine {engine} was built for another TensorRT or GPU",
                           expected=f"{built[0]} {built[1]} on compute capability {built[2]}",
                           got=f"{here[0]} {here[1]} on compute capability {here[2] or 'none (no GPU)'}", fix=rebuild)
    return sidecar
