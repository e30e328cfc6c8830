"""The model registry: names to builder functions.

Builders register with :func:`register_model`; :func:`create_model` builds by name and records the
name and arguments on the model so a checkpoint can rebuild it. Registering a name twice is an
error, never a silent override. This module does not import torch, and it sits on the core floor, so
it never imports the models themselves: import :mod:`edgereid.models` (whose ``create_model`` and
``list_models`` are these) to have the built-in students registered.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Any, Callable

from edgereid.errors import RegistryError


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder and the task its models serve."""

    name: str
    task: str
    builder: Callable[..., Any]
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, task: str, description: str = "") -> Callable:
    """Decorator: register a builder under ``name``; a second registration of a name raises."""

    def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise RegistryError(f"model name '{name}' is registered twice",
                                got=f"{_REGISTRY[name].builder.__module__} and {builder.__module__}",
                                fix="give the new model a different name")
        _REGISTRY[name] = ModelEntry(name, task, builder, description or (builder.__doc__ or "").strip())
        return builder

    return decorate


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``, with a did-you-mean on a miss."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `edgereid.models.list_models()`"
        raise RegistryError(f"unknown model '{name}'", fix=hint)
    return _REGISTRY[name]


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (and ``task`` when given)."""
    return sorted(n for n, e in _REGISTRY.items()
                  if fnmatch.fnmatch(n, pattern) and (task is None or e.task == task))


def create_model(name: str, **kwargs: Any) -> Any:
    """Build a registered model; the model remembers ``name`` and ``kwargs`` (or its own ``rebuild_args``) for
    checkpoints."""
    entry = get_entry(name)
    try:
        model = entry.builder(**kwargs)
    except TypeError as exc:
        raise RegistryError(f"bad arguments for model '{name}': {exc}",
                            fix="check the builder's signature in edgereid.models") from exc
    model.registry_name = name
    # a model built from outside files (a CLIP folder) says which arguments rebuild it without them
    model.constructor_args = dict(getattr(model, "rebuild_args", None) or kwargs)
    return model
