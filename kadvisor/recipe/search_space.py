"""``[search.space]``: dotted recipe paths mapped to distributions for the tuner.

    [search.space]
    "optimizer.learning_rate" = { log_uniform = [1e-4, 1e-1] }
    "model.dropout" = { uniform = [0.1, 0.5] }
    "train.batch_size" = { int = [16, 64], step = 16 }
    "model.pooling_dim" = { choice = [1024, 2048, 4096, 8192] }
    "optimizer.nesterov" = { bool = true }

Every endpoint and choice must itself be a valid value for its path, so a search can
never propose a recipe that ``kadvisor recipe check`` would reject. A range over an
integer field (``int``, or ``uniform``/``log_uniform`` on one) samples integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from kadvisor.recipe.paths import PathError, flatten, lookup, show, validate

KINDS = ("log_uniform", "uniform", "int", "choice", "bool")
# Sections a search may not change: the search itself and the advisor's thresholds.
_NOT_SEARCHABLE = ("search.", "advisor.")


@dataclass(frozen=True)
class Distribution:
    """One searched recipe field.

    Attributes:
        path: Dotted recipe path.
        kind: One of `KINDS`.
        low, high: Range for numeric kinds.
        step: Step for ``int`` (optional for ``uniform``; a factor > 1 for ``log_uniform``).
        choices: Values for ``choice``.
        integer: True when the field is an integer (sampled as integers).
    """

    path: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple = ()
    integer: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind in ("log_uniform", "uniform", "int")


def _one(root: type, path: str, spec: Any) -> Distribution:
    where = f"search.space.{path}"
    try:
        info = lookup(root, path)
    except PathError as e:
        raise PathError(f"{where}: {e}") from None
    if path.startswith(_NOT_SEARCHABLE):
        raise PathError(f"{where}: the [{path.split('.')[0]}] section cannot be searched")
    if not isinstance(spec, dict):
        raise PathError(f"{where} must be a table such as {{ uniform = [0.1, 0.5] }}, got {show(spec)}")
    kinds = [k for k in spec if k in KINDS]
    extra = [k for k in spec if k not in KINDS and k != "step"]
    if len(kinds) != 1 or extra:
        raise PathError(
            f"{where} must have exactly one of {', '.join(KINDS)} (and optionally step), "
            f"got keys {sorted(spec)}"
        )
    kind = kinds[0]
    value = spec[kind]
    if "step" in spec and kind in ("choice", "bool"):
        raise PathError(f"{where}: step applies to ranges (int, uniform, log_uniform), not to {kind}")
    if kind == "bool":
        if info.annotation is not bool or value is not True:
            raise PathError(f"{where}: {{ bool = true }} needs a true/false field, and {path} is not one")
        return Distribution(path, kind, choices=(False, True))
    if kind == "choice":
        if not isinstance(value, list) or not value:
            raise PathError(f"{where}.choice must be a non-empty list, got {show(value)}")
        return Distribution(path, kind, choices=tuple(_valid(root, path, v, f"{where}.choice") for v in value))
    if not (isinstance(value, list) and len(value) == 2):
        raise PathError(f"{where}.{kind} must be [low, high], got {show(value)}")
    low, high = (_valid(root, path, v, f"{where}.{kind}") for v in value)
    if not isinstance(low, (int, float)) or isinstance(low, bool):
        raise PathError(f"{where}: {kind} needs a numeric field, and {path} is not one")
    if kind == "int" and info.annotation is not int:
        raise PathError(f"{where}: int needs an integer field, and {path} is a float; use uniform")
    if not low < high:
        raise PathError(f"{where}.{kind} must have low < high, got [{low:g}, {high:g}]")
    if kind == "log_uniform" and low <= 0:
        raise PathError(f"{where}.log_uniform must have low > 0, got {low:g}")
    step = spec.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0):
        raise PathError(f"{where}.step must be a number > 0, got {show(step)}")
    if kind == "log_uniform" and step is not None and step <= 1:
        raise PathError(f"{where}.step of log_uniform is a factor and must be > 1, got {show(step)}")
    integer = info.annotation is int
    if integer and step is not None and float(step) != int(step):
        raise PathError(f"{where}.step must be a whole number for the integer field {path}, got {show(step)}")
    if kind == "int" or (integer and kind == "uniform"):
        step = int(step or 1)
    return Distribution(path, kind, low=low, high=high, step=step, integer=integer)


def _valid(root: type, path: str, value: Any, where: str) -> Any:
    try:
        return validate(root, path, value)
    except PathError as e:
        raise PathError(f"{where}: {e}") from None


def parse_space(space: dict, root: type, problems_only: bool = False):
    """Parses ``[search.space]``.

    Args:
        space: Mapping of dotted path (possibly nested tables) to distribution table.
        root: The recipe schema class.
        problems_only: Yield (path, message) problems instead of raising.

    Returns:
        A list of `Distribution`, or an iterator of problems with ``problems_only``.

    Raises:
        PathError: for the first invalid entry (without ``problems_only``).
    """
    entries = space_entries(space)
    if problems_only:
        return _problems(entries, root)
    return [_one(root, path, spec) for path, spec in entries]


def space_entries(space: dict) -> list[tuple[str, Any]]:
    """``[search.space]`` as (dotted path, distribution table) pairs, however written."""
    # Quoted keys give "optimizer.learning_rate"; unquoted dotted keys give nesting.
    out = []
    for path, spec in flatten({k: v for k, v in space.items()}).items():
        # flatten() descends into the distribution tables too; re-join at the kind key.
        head, _, last = path.rpartition(".")
        if last in KINDS or last == "step":
            out.append((head, last, spec))
        else:
            out.append((path, None, spec))
    grouped: dict[str, Any] = {}
    for path, key, spec in out:
        if key is None:
            grouped[path] = spec
        else:
            grouped.setdefault(path, {})[key] = spec
    return list(grouped.items())


def _problems(entries, root) -> Iterator[tuple[str, str]]:
    for path, spec in entries:
        try:
            _one(root, path, spec)
        except PathError as e:
            yield (f"search.space.{path}", str(e))
