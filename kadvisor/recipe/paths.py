"""Dotted recipe paths: lookup of field declarations, get and validated set.

One resolver serves every way a recipe changes — the TOML file, ``--set``, stage
overrides, advisor patches and tuner search spaces — so an unknown or invalid path gets
the same message everywhere.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kadvisor.recipe.fields import Check, ValueProblem, coerce
from kadvisor.registry import did_you_mean

# Fields that hold structure rather than values; they cannot be set by a dotted path.
STRUCTURAL = ("stages",)


@dataclass(frozen=True)
class FieldInfo:
    """A leaf field of the schema."""

    path: str
    annotation: Any
    default: Any
    help: str
    check: Check | None


def _is_section(annotation: Any) -> bool:
    return dataclasses.is_dataclass(annotation)


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def section_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """Returns (field, resolved annotation) pairs of a schema dataclass."""
    hints = _hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


@lru_cache(maxsize=None)
def leaf_fields(root: type) -> dict[str, FieldInfo]:
    """Every settable dotted path of ``root`` with its declaration."""
    out: dict[str, FieldInfo] = {}

    def walk(cls: type, prefix: str) -> None:
        for f, annotation in section_fields(cls):
            path = f"{prefix}{f.name}"
            if _is_section(annotation):
                walk(annotation, f"{path}.")
            elif f.name not in STRUCTURAL:
                default = (
                    f.default_factory()  # type: ignore[misc]
                    if f.default is dataclasses.MISSING
                    else f.default
                )
                out[path] = FieldInfo(
                    path, annotation, default, f.metadata.get("help", ""), f.metadata.get("check")
                )

    walk(root, "")
    return out


def section_paths(root: type) -> set[str]:
    """Dotted paths of every section (table) of ``root``."""
    return {p.rsplit(".", 1)[0] for p in leaf_fields(root) if "." in p} | {
        ".".join(p.split(".")[:i]) for p in leaf_fields(root) for i in range(1, p.count(".") + 1)
    }


class PathError(ValueError):
    """A dotted path is unknown or its value invalid (message without location)."""


def lookup(root: type, path: str) -> FieldInfo:
    """Returns the declaration of ``path``.

    Raises:
        PathError: "unknown field 'x' — did you mean 'y'?"
    """
    fields = leaf_fields(root)
    if path not in fields:
        if path in section_paths(root):
            example = next(p for p in fields if p.startswith(path + "."))
            raise PathError(f"'{path}' is a section, not a field; set e.g. '{example}'")
        raise PathError(f"unknown field '{path}'{did_you_mean(path, list(fields))}")
    return fields[path]


def show(value: Any) -> str:
    """Formats a value as a user wrote it in TOML (for messages)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return repr(value) if not isinstance(value, (list, dict)) else str(value)


def validate(root: type, path: str, value: Any) -> Any:
    """Checks ``value`` for ``path`` and returns it converted to the field's type.

    Raises:
        PathError: "optimizer.learning_rate must be a float > 0, got -1".
    """
    info = lookup(root, path)
    try:
        return coerce(info.annotation, value, info.check)
    except ValueProblem as problem:
        raise PathError(f"{path} must be {problem.expected}, got {show(value)}{problem.hint}") from None


def get_path(obj: Any, path: str) -> Any:
    """Returns the value at ``path`` of a schema dataclass instance."""
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def set_path(obj: Any, path: str, value: Any) -> None:
    """Validates and sets ``path`` on a schema dataclass instance, in place.

    Raises:
        PathError: for an unknown path or an invalid value.
    """
    value = validate(type(obj), path, value)
    *parents, leaf = path.split(".")
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, leaf, value)


def flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    """Turns nested tables into dotted paths: {"a": {"b": 1}} → {"a.b": 1}."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in _DICT_VALUED:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


# Fields whose value is itself a table (not a section).
_DICT_VALUED = {"search.space"}
