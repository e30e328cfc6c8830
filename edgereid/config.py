"""Strict configuration: YAML or dicts into frozen dataclasses; unknown keys are errors.

A misspelt key is the most common silent bug in ML tooling; here it fails with a did-you-mean. YAML is
read within budgets (file size, expanded size of anchors and aliases), duplicate keys are errors, mapping
keys stay as written (a camera ``010`` is "010", not 8), every float is finite, and the numeric fields a
config class lists in its ``RANGES`` are checked against them whichever way the config is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from edgereid.errors import ConfigError
from edgereid.fileio import read_bounded_text

T = TypeVar("T")


# Budgets of a config file: its size on disk, and its nodes once every alias is expanded.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 100_000


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: error messages never render unbounded values."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class _ConfigLoader(yaml.SafeLoader):
    """Safe YAML for configs: duplicate keys refused, mapping keys kept as the text written."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else self.construct_object(key_node, deep)
            if key in mapping:
                raise ConfigError(f"key {short(key)} appears twice in one mapping", got=str(key_node.start_mark).strip(),
                                  fix="keep one of them (YAML would silently take the last)")
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _ConfigLoader.construct_mapping)


def _expanded_nodes(node: yaml.Node, memo: dict[int, float]) -> float:
    """How many nodes ``node`` stands for once aliases are expanded (a recursive alias: infinity)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = float("inf")  # seen again while inside it: a cycle
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_nodes(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = size
    return size


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping within the budgets; errors say which file and where."""
    path = Path(path)
    text = read_bounded_text(path, MAX_CONFIG_BYTES, "config file", ConfigError)
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_nodes(node, {}) > MAX_CONFIG_NODES:
            raise ConfigError(f"{path} expands to too many values through its anchors and aliases",
                              expected=f"at most {MAX_CONFIG_NODES} after expansion",
                              fix="write the values out instead of nesting aliases")
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML", got=str(exc)[:300]) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of keys", expected="key: value lines (a YAML mapping)",
                          got=type(data).__name__, fix="check that this is the config file you meant")
    return data


def check_ranges(config: Any) -> None:
    """Every field named in the ``RANGES`` class attributes of a dataclass instance (merged along its class
    hierarchy: ``{"max_batch": (1, 4096), ...}``) within its range, when it is not None. Call it from
    ``__post_init__`` so a config built in code is checked as one read from YAML."""
    ranges: dict[str, tuple[float, float]] = {}
    for cls in reversed(type(config).__mro__):
        ranges.update(getattr(cls, "__dict__", {}).get("RANGES", {}))
    for name, (low, high) in ranges.items():
        value = getattr(config, name)
        if value is None:
            continue
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high):
            raise ConfigError(f"'{name}' is out of range in {type(config).__name__}",
                              expected=f"a number from {low} to {high}", got=short(value))


def build(cls: type[T], data: Any, where: str = "config") -> T:
    """Instantiate dataclass ``cls`` from ``data``, recursing into nested dataclasses."""
    if not isinstance(data, dict):
        raise ConfigError(f"'{where}' must be a mapping", got=f"{type(data).__name__}: {short(data)}")
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
            raise ConfigError(f"'{where}' must be a mapping", got=short(value))
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{where}' must be a list", got=short(value))
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
                          got=f"{type(value).__name__}: {short(value)}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"'{where}' must be a finite number", got=short(value))
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


