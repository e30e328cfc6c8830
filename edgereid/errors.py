"""The error hierarchy of edgereid.

Every error a user can cause says three things: what was expected, what came, and what to do.
Catch :class:`EdgeReidError` to handle any of them; the subclasses let callers react to one kind.
"""

from __future__ import annotations


class EdgeReidError(Exception):
    """Base class of every error edgereid raises on purpose."""

    def __init__(self, problem: str, *, expected: str | None = None, got: str | None = None,
                 fix: str | None = None) -> None:
        self.problem = problem
        self.expected = expected
        self.got = got
        self.fix = fix
        parts = [problem]
        if expected is not None:
            parts.append(f"expected: {expected}")
        if got is not None:
            parts.append(f"got: {got}")
        if fix is not None:
            parts.append(f"what to do: {fix}")
        super().__init__("\n  ".join(parts))


class InputError(EdgeReidError, ValueError):
    """A frame, box, landmark or array handed to the runtime is malformed."""


class ConfigError(EdgeReidError, ValueError):
    """A configuration file or dictionary has unknown keys, missing keys or bad values."""


class ModelCardError(EdgeReidError):
    """A model file has no card, an unreadable card, or a card of an unsupported schema."""


class CheckpointError(EdgeReidError):
    """A checkpoint cannot be read or does not match the architecture it names."""


class GalleryError(EdgeReidError):
    """A gallery file is corrupt, truncated, or was built with an incompatible model."""


class BackendError(EdgeReidError):
    """An inference backend could not be created as asked (provider, device, engine)."""


class BackendClosedError(BackendError):
    """A backend (or a pipeline) was used after ``close()`` released what it held."""


class FrameError(EdgeReidError):
    """One frame could not be processed inside a batch (its ``FrameResult.error``); the cause is chained."""


class PipelineClosedError(EdgeReidError):
    """Work was submitted to a pipeline that is closed or whose worker stopped."""


class OutputPathError(EdgeReidError, OSError):
    """A file cannot be written where it was asked for (a read-only folder, a path under a regular file, a
    full disk). Also an ``OSError``, so code that caught the file system's error still does."""


class ExportError(EdgeReidError):
    """An export produced a graph that fails its checks (ONNX checker, parity with torch)."""


class RegistryError(EdgeReidError, KeyError):
    """A model name is unknown or registered twice."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class MissingDependencyError(EdgeReidError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""

    def __init__(self, module: str, extra: str, feature: str, *, got: str | None = None,
                 fix: str | None = None) -> None:
        super().__init__(f"{feature} needs the Python module '{module}', which is not installed",
                         got=got, fix=fix or f"pip install 'edgereid[{extra}]'")
        self.module = module
        self.extra = extra


def require(module: str, extra: str, feature: str):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra, feature) from exc
