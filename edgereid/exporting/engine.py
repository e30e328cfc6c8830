"""TensorRT engines from ONNX: one code path for TensorRT 10.x / 11.x and TensorRT-RTX.

The flavour is found by feature detection (``tensorrt`` first, then ``tensorrt_rtx``). Every network is
strongly typed: precision comes from the ONNX file (:mod:`edgereid.exporting.precision` converts and
gates it first), which is the one form both TensorRT 10.3 on JetPack 6 and TensorRT 11 accept.

A build writes, atomically and only after everything succeeded:

- the engine (``--out``), also stored in an engine cache keyed by ONNX hash + TensorRT flavour and
  version + GPU compute capability + precision + batch profile, so an identical request is a copy;
- a timing cache (beside the engine unless given), reused by the next build;
- a sidecar ``<engine>.json`` with the card, the key, the engine's SHA-256 and size, the plugins it
  needs and the command that rebuilds it, written through :mod:`edgereid.engine_file` (whose
  :func:`~edgereid.engine_file.check_engine` refuses an engine that is truncated, altered, or built for
  another TensorRT or GPU, saying "rebuild with: <command>").

A failed build or gate leaves any previous engine in place.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgereid.card import ModelCard
from edgereid import engine_file
from edgereid.engine_file import BatchProfile, EngineKey, import_tensorrt, write_sidecar
from edgereid.errors import ExportError
from edgereid.fileio import atomic_write_bytes
from edgereid.progress import progress


@dataclass
class BuildResult:
    """What a build produced (or reused from the cache)."""

    engine: Path
    sidecar: Path
    key: EngineKey
    cached: bool
    gate: dict[str, Any] | None = None
    notes: str = ""
    log: list[str] = field(default_factory=list)


def _rtx_target(trt, requested: str | None) -> tuple[Any, str]:
    """TensorRT-RTX builds ahead of time for a named SM; without a GPU one must be named."""
    if requested:
        name = "SM" + requested.replace(".", "")
        if not hasattr(trt.ComputeCapability, name):
            choices = [c for c in dir(trt.ComputeCapability) if c.startswith("SM")]
            raise ExportError(f"TensorRT-RTX cannot target compute capability {requested}", expected=str(choices))
        return getattr(trt.ComputeCapability, name), requested
    current = engine_file.compute_capability()
    if current:
        return trt.ComputeCapability.CURRENT, current
    return trt.ComputeCapability.SM86, "8.6"  # no GPU: an Ampere default, stated in the sidecar


def engine_key(onnx_bytes: bytes, trt, flavour: str, compute_capability: str, precision: str,
               profile: BatchProfile) -> EngineKey:
    return EngineKey(hashlib.sha256(onnx_bytes).hexdigest(), flavour, trt.__version__, compute_capability,
                     precision, profile.text())


class _Logger:
    """A TensorRT logger that keeps warnings and errors for the error message."""

    def __new__(cls, trt):
        class Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.messages: list[str] = []

            def log(self, severity, msg) -> None:
                if severity <= trt.ILogger.Severity.WARNING:
                    self.messages.append(f"{severity.name}: {msg}")

        return Logger()


def _progress_monitor(trt):
    """A tqdm bar per build phase, where this TensorRT has ``IProgressMonitor``."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.bars: dict[str, Any] = {}

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            self.bars[phase_name] = progress(total=num_steps, desc=f"TensorRT {phase_name}", leave=False)

        def step_complete(self, phase_name, step) -> bool:
            bar = self.bars.get(phase_name)
            if bar is not None:
                bar.n = step + 1
                bar.refresh()
            return True

        def phase_finish(self, phase_name) -> None:
            bar = self.bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return Monitor()


def parse_onnx(trt, builder, logger, onnx_bytes: bytes, source: str):
    """A strongly typed network from ONNX bytes; errors name the node and op that failed."""
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        problems = []
        for i in range(parser.num_errors):
            error = parser.get_error(i)
            node = error.node_name() if hasattr(error, "node_name") else ""
            op = error.node_operator() if hasattr(error, "node_operator") else ""
            problems.append(f"node '{node or error.node()}' (op {op or '?'}): {error.desc()}")
        raise ExportError(f"TensorRT cannot parse {source}", got="; ".join(problems) or "no parser message",
                          fix="export with the supported opset (17), or register the plugin the op needs")
    return network, parser


def fixed_batch(path: Path) -> int | None:
    """The batch size an ONNX graph's first input fixes, or None for a dynamic batch axis."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    dim = graph.input[0].type.tensor_type.shape.dim[0] if graph.input else None
    return dim.dim_value if dim is not None and dim.HasField("dim_value") and dim.dim_value > 0 else None


def engine_profile(path: Path, asked: BatchProfile | None) -> BatchProfile:
    """The optimisation profile: the one asked for, the graph's own where it fixes the batch (a fixed-batch
    model gets ``N:N:N`` automatically), else 1:8:32. A profile that contradicts a fixed batch is refused."""
    fixed = fixed_batch(path)
    if fixed is None:
        return asked or BatchProfile()
    if asked is not None and (asked.min, asked.opt, asked.max) != (fixed, fixed, fixed):
        raise ExportError(f"{path.name} was exported with a fixed batch of {fixed}", got=f"--batch {asked.text()}",
                          fix=f"drop --batch (the profile follows the model: {fixed}:{fixed}:{fixed}), or "
                              "re-export with a dynamic batch axis")
    return BatchProfile(fixed, fixed, fixed)


def onnx_card(path: Path) -> ModelCard:
    """The card in an ONNX file's metadata, read with ``onnx`` (ONNX Runtime would refuse graphs with
    ops it lacks, which TensorRT may still take through a plugin)."""
    import onnx

    from edgereid.card import card_from_metadata

    model = onnx.load(str(path), load_external_data=False)
    return card_from_metadata({p.key: p.value for p in model.metadata_props}, str(path))


def build_engine(onnx_path: str | Path, out: str | Path, *, precision: str = "fp32", calib: str | Path | None = None,
                 batch: BatchProfile | None = None, workspace_mb: int = 1024,
                 timing_cache: str | Path | None = None, cache_dir: str | Path | None = None,
                 compute_capability: str | None = None, flavour: str | None = None,
                 plugins: tuple[str, ...] = (), command: str | None = None) -> BuildResult:
    """Convert (and gate) ``onnx_path`` to ``precision``, build the engine, write engine + sidecar. ``batch``
    None: the model's fixed batch, or 1:8:32 for a dynamic one (:func:`engine_profile`)."""
    from edgereid.exporting.precision import convert

    onnx_path, out = Path(onnx_path), Path(out)
    if not onnx_path.is_file():
        raise ExportError(f"ONNX file not found: {onnx_path}", fix="check the path")
    card = onnx_card(onnx_path)
    batch = engine_profile(onnx_path, batch)
    trt, flavour = import_tensorrt(flavour)
    for library in plugins:
        trt.get_plugin_registry().load_library(str(library))
    crops = None
    if precision != "fp32":
        from edgereid.data.crop_folder import load_crops

        if calib is None and precision != "fp16":
            raise ExportError(f"--precision {precision} needs --calib DIR (crops for calibration and the accuracy gate)")
        crops = load_crops(calib, card.input, limit=512) if calib is not None else None
    converted = convert(onnx_path, precision, crops)
    onnx_bytes = converted.model.SerializeToString()
    if flavour == "tensorrt_rtx":
        target, capability = _rtx_target(trt, compute_capability)
    else:
        target, capability = None, engine_file.compute_capability()
        if capability is None:
            raise ExportError("TensorRT builds for the GPU it runs on, and none is usable here",
                              fix="build on the target device (or use tensorrt_rtx to build ahead of time)")
        if compute_capability and compute_capability != capability:
            raise ExportError(f"TensorRT builds for this machine's GPU (compute capability {capability}), "
                              f"not {compute_capability}", fix="build on the target device, or drop --compute-capability")
    key = engine_key(onnx_bytes, trt, flavour, capability, precision, batch)
    command = command or _rebuild_command(onnx_path, out, precision, calib, batch, workspace_mb, capability, flavour,
                                          plugins)
    gate = converted.report.to_dict() if converted.report else None
    cache = Path(cache_dir) if cache_dir else None
    cached_engine = cache / f"{key.digest()}.engine" if cache else None
    if cached_engine is not None and cached_engine.is_file():
        plan = cached_engine.read_bytes()
        return _write(out, plan, card, key, gate, converted.notes, plugins, command, cached=True)
    timing_path = Path(timing_cache) if timing_cache else out.with_suffix(out.suffix + ".timing")
    plan, log = build_plan(trt, onnx_bytes, str(onnx_path), batch, workspace_mb, target, timing_path, plugins)
    if cached_engine is not None:
        atomic_write_bytes(cached_engine, plan)
    result = _write(out, plan, card, key, gate, converted.notes, plugins, command, cached=False)
    result.log = log
    return result


def build_plan(trt, onnx_bytes: bytes, source: str, batch: BatchProfile = BatchProfile(), workspace_mb: int = 1024,
               target=None, timing_path: Path | None = None, plugins: tuple[str, ...] = ()) -> tuple[bytes, list[str]]:
    """Parse (strongly typed) and build a serialised engine; returns it with the builder's warnings.
    The timing cache at ``timing_path`` is read first and written back after a successful build."""
    logger = _Logger(trt)
    builder = trt.Builder(logger)
    network, _parser = parse_onnx(trt, builder, logger, onnx_bytes, source)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if target is not None:
        config.num_compute_capabilities = 1
        config.set_compute_capability(target, 0)
    add_profile(builder, network, config, batch)
    timing = None
    if timing_path is not None and hasattr(config, "create_timing_cache"):
        timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
    monitor = _progress_monitor(trt)
    if monitor is not None:
        config.progress_monitor = monitor
    if plugins and hasattr(config, "plugins_to_serialize"):
        config.plugins_to_serialize = [str(p) for p in plugins]
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ExportError(f"TensorRT failed to build {source}; no engine was written",
                          got="\n".join(logger.messages[-10:]) or "no log message")
    if timing is not None:
        atomic_write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
    return bytes(plan), logger.messages


def add_profile(builder, network, config, batch: BatchProfile):
    """One optimisation profile: every input's batch dimension spans ``batch``; returns the profile."""
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        dims = tuple(tensor.shape)
        if any(d < 0 for d in dims[1:]):
            raise ExportError(f"input '{tensor.name}' has dynamic dimensions other than the batch",
                              got=str(dims), fix="export with a fixed crop size (the card's input)")
        profile.set_shape(tensor.name, (batch.min, *dims[1:]), (batch.opt, *dims[1:]), (batch.max, *dims[1:]))
    config.add_optimization_profile(profile)
    return profile


def _rebuild_command(onnx_path: Path, out: Path, precision: str, calib, batch: BatchProfile, workspace_mb: int,
                     capability: str, flavour: str, plugins: tuple[str, ...]) -> str:
    parts = ["python", "export/build_engine.py", "--model", str(onnx_path), "--out", str(out), "--precision", precision,
             "--batch", batch.text(), "--workspace", str(workspace_mb)]
    if calib:
        parts += ["--calib", str(calib)]
    if flavour == "tensorrt_rtx":
        parts += ["--flavour", flavour, "--compute-capability", capability]
    for library in plugins:
        parts += ["--plugin", str(library)]
    return shlex.join(parts)


def _write(out: Path, plan: bytes, card: ModelCard, key: EngineKey, gate, notes: str, plugins: tuple[str, ...],
           command: str, cached: bool) -> BuildResult:
    """Engine, its plugin libraries (copied beside it: the backend loads them from there, by name and
    hash, before deserialising) and the sidecar, each written atomically."""
    beside = []
    for library in plugins:
        target = out.parent / Path(library).name
        if Path(library).resolve() != target.resolve():
            atomic_write_bytes(target, Path(library).read_bytes())
        beside.append(target)
    sidecar = write_sidecar(out, plan, card, key, gate=gate, notes=notes, plugins=tuple(beside), rebuild=command)
    atomic_write_bytes(out, plan)
    return BuildResult(out, sidecar, key, cached, gate, notes)


