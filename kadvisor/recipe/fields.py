"""Field declarations for the recipe schema: default, help text and constraint.

Every recipe field is declared as ``name: type = option(default, help, check)``. The
type comes from the annotation; the check is a `Check`, a predicate phrased as the end
of a sentence ("> 0", "one of 'adam', 'sgd'"), so that a failed check reads
``optimizer.learning_rate must be a float > 0, got -1``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Callable

from kadvisor.registry import Registry, did_you_mean


@dataclass(frozen=True)
class Check:
    """A constraint on a value.

    Attributes:
        phrase: What a valid value is, completing "must be a <type> ...".
        test: Returns True for a valid value.
        hint: Optional function giving extra text for a bad value (did-you-mean).
    """

    phrase: str
    test: Callable[[Any], bool]
    hint: Callable[[Any], str] | None = None
    names_type: bool = False  # the phrase says the type too ("one of 'a', 'b'")


def gt(bound: float) -> Check:
    """Strictly greater than ``bound``."""
    return Check(f"> {bound:g}", lambda v: v > bound)


def ge(bound: float) -> Check:
    """Greater than or equal to ``bound``."""
    return Check(f">= {bound:g}", lambda v: v >= bound)


def between(low: float, high: float, *, high_open: bool = False, low_open: bool = False) -> Check:
    """In ``[low, high]`` (``(`` / ``)`` for an open end with ``low_open`` / ``high_open``)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    return Check(f"in {left}{low:g}, {high:g}{right}",
                 lambda v: (low < v if low_open else low <= v) and (v < high if high_open else v <= high))


def seed_range() -> Check:
    """A seed NumPy and TensorFlow both accept: ``np.random.seed`` takes at most 2**32 - 1."""
    return Check("in [0, 4294967295] (2**32 - 1)", lambda v: 0 <= v < 2**32)


def off_or_at_least(bound: int) -> Check:
    """0 (the feature is off) or at least ``bound`` (K-fold needs 2 folds)."""
    return Check(f"0 (off) or >= {bound}", lambda v: v == 0 or v >= bound)


def file_name() -> Check:
    """Usable as one path component: the run directory is ``--out/<name>-<time>``."""
    return Check(
        "a non-empty string without '/', '\\' or a leading '.'",
        lambda v: bool(v) and not any(c in v for c in "/\\\0") and not v.startswith("."),
        names_type=True,
    )


def one_of(*choices: str) -> Check:
    """One of a fixed set of strings."""
    listed = ", ".join(f"'{c}'" for c in choices)
    return Check(
        f"one of {listed}",
        lambda v: v in choices,
        lambda v: did_you_mean(v, choices),
        names_type=True,
    )


def registered(registry: Registry) -> Check:
    """A name registered in ``registry`` (resolved lazily, without TensorFlow)."""

    return Check(
        f"a registered {registry.kind} name",
        lambda v: v in registry,
        lambda v: did_you_mean(v, registry.names())
        + f"; expected one of: {', '.join(registry.names())}",
        names_type=True,
    )


def each(check: Check) -> Check:
    """Every element of a list passes ``check``."""
    return Check(f"each {check.phrase}", lambda v: all(check.test(x) for x in v))


def length(*allowed: int) -> Check:
    """A list with one of the allowed lengths."""
    text = " or ".join(str(n) for n in allowed)
    return Check(f"of length {text}", lambda v: len(v) in allowed)


def all_of(*checks: Check) -> Check:
    """Every check passes."""
    return Check(
        " and ".join(c.phrase for c in checks), lambda v: all(c.test(v) for c in checks)
    )


def option(default: Any, help: str, check: Check | None = None) -> Any:
    """Declares a recipe field.

    Args:
        default: The default value (copied for lists and dicts).
        help: One line saying what the field does, shown by ``kadvisor recipe show``.
        check: The constraint, if any, beyond the annotated type.

    Returns:
        A `dataclasses.field` carrying the help text and check in its metadata.
    """
    metadata = {"help": help, "check": check}
    if isinstance(default, (list, dict)):
        return dataclasses.field(
            default_factory=lambda: copy.deepcopy(default), metadata=metadata
        )
    return dataclasses.field(default=default, metadata=metadata)


def section(cls: type, help: str) -> Any:
    """Declares a nested section (a table in TOML)."""
    return dataclasses.field(default_factory=cls, metadata={"help": help, "check": None})


class ValueProblem(ValueError):
    """A value does not match its field.

    Attributes:
        expected: What a valid value is ("a float > 0"), without the location.
        hint: Extra text such as " — did you mean 'adam'?".
    """

    def __init__(self, expected: str, hint: str = ""):
        super().__init__(expected)
        self.expected = expected
        self.hint = hint


def expected_phrase(annotation: Any, check: Check | None) -> str:
    """Says what a valid value is: the type, then the constraint."""
    if check is None:
        return type_phrase(annotation)
    if check.names_type:
        return str(check.phrase)
    return f"{type_phrase(annotation)} {check.phrase}"


_TYPE_PHRASES = {
    bool: "true or false",
    int: "an integer",
    float: "a float",
    str: "a string",
    dict: "a table",
}


def type_phrase(annotation: Any) -> str:
    """Describes a field type in words ("a float", "a list of integers")."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (inner,) = typing.get_args(annotation)
        word = {int: "integers", float: "numbers", str: "strings"}.get(inner, "values")
        return f"a list of {word}"
    if origin is dict:
        return "a table"
    return _TYPE_PHRASES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _coerce_scalar(annotation: Any, value: Any) -> Any:
    # TOML distinguishes 1 from 1.0; a user writing `learning_rate = 1` means a float.
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif annotation is dict:
        if isinstance(value, dict):
            return dict(value)
    raise ValueProblem(type_phrase(annotation))


def coerce(annotation: Any, value: Any, check: Check | None) -> Any:
    """Converts ``value`` to the field's type and applies its check.

    Raises:
        ValueProblem: with the phrase "a float > 0" describing what was expected.
    """
    origin = typing.get_origin(annotation)
    try:
        if origin is list:
            (inner,) = typing.get_args(annotation)
            if not isinstance(value, list):
                raise ValueProblem(type_phrase(annotation))
            value = [_coerce_scalar(inner, v) for v in value]
        elif origin is dict:
            value = _coerce_scalar(dict, value)
        else:
            value = _coerce_scalar(annotation, value)
    except ValueProblem:
        raise ValueProblem(expected_phrase(annotation, check)) from None
    if check is not None and not check.test(value):
        hint = check.hint(value) if check.hint else ""
        raise ValueProblem(expected_phrase(annotation, check), hint)
    return value
