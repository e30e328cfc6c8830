"""Strict configuration: YAML or dicts into frozen dataclasses; unknown keys are errors.

A misspelt key is the most common silent bug in ML tooling; here it fails with a did-you-mean.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from edgereid.errors import ConfigError

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors say which file and where."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", fix="check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML", got=str(exc)) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of keys", got=type(data).__name__)
    return data


def build(cls: type[T], data: Any, where: str = "config") -> T:
    """Instantiate dataclass ``cls`` from ``data``, recursing into nested dataclasses."""
    if not isinstance(data, dict):
        raise ConfigError(f"'{where}' must be a mapping", got=f"{type(data).__name__}: {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            raise ConfigError(f"unknown key '{key}' in {where}", expected=f"one of {sorted(fields)}",
                              fix=f"did you mean '{close[0]}'?" if close else "remove it")
    hints = typing.get_type_hints(cls)
    values = {key: _convert(hints[key], value, f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where} is incomplete: {exc}") from exc


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _convert(options[0], value, where) if len(options) == 1 else value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{where}' must be a mapping", got=repr(value))
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{where}' must be a list", got=repr(value))
        item = args[0] if args else Any
        return tuple(_convert(item, v, where) for v in value)
    if hint in (int, float, str, bool):
        return _scalar(hint, value, where)
    return value


def _scalar(kind: type, value: Any, where: str) -> Any:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(f"'{where}' has the wrong type", expected=kind.__name__,
                          got=f"{type(value).__name__}: {value!r}")
    return value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Set ``{"optim.epochs": 3}``-style dotted keys in a nested mapping (in place; returned)."""
    for dotted, value in (overrides or {}).items():
        section = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            section = section.setdefault(key, {})
        section[leaf] = value
    return data


