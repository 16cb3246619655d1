"""Turning rule actions into concrete recipe patches, and reconciling contradictions.

Rules write changes *relative* to the current recipe in a tiny language, applied left
to right to the current value:

- ``"×0.2"`` multiply, ``"+30"`` add,
- ``"≥1e-4"`` at least, ``"≤0.5"`` at most,

so ``"×10≥1e-4"`` means "ten times the weight decay, and at least 1e-4" (which turns 0
into 1e-4). Any other value is absolute. With a recipe, `concretize` computes the new
value (``optimizer.learning_rate: 0.1 → 0.02``); without one the relative text stays
in the patch (``{"optimizer.learning_rate": "×0.2"}``). A change that would not change
anything is dropped.

`reconcile` removes contradictions across findings: an action that moves a path in the
opposite direction (or to a different value) from an action of a higher-ranked
finding is dropped — the higher-severity, higher-confidence finding wins.
"""

from __future__ import annotations

import re
from typing import Any

from kadvisor.advisor.findings import Action, Finding
from kadvisor.advisor.readers.run import get_path

_OP = re.compile(r"([×+≥≤])\s*([-+]?[0-9.]+(?:e[-+]?[0-9]+)?)")

# Defaults of the fields the rules patch, for recipes that leave them out.
_FIELD_DEFAULTS = {
    "optimizer.learning_rate": 1e-3, "optimizer.weight_decay": 0.0, "optimizer.clipnorm": 0.0,
    "model.dropout": 0.0, "model.width": 32, "train.epochs": 30, "train.batch_size": 32,
    "train.early_stopping": 0, "data.val_fraction": 0.1, "loss.label_smoothing": 0.0,
    "schedule.name": "constant", "data.augment.flip": "none", "data.balance": "none",
    "loss.name": "crossentropy", "model.weights": "none", "stages": [],
}


def is_relative(value: Any) -> bool:
    """Whether a patch value is a relative change in the tiny language."""
    return isinstance(value, str) and bool(value) and value[0] in "×+≥≤" and bool(_OP.match(value))


def apply_relative(current: Any, spec: str) -> Any:
    """Applies a relative change to a number (see module docstring)."""
    value = float(current)
    for op, num in _OP.findall(spec):
        x = float(num)
        if op == "×":
            value *= x
        elif op == "+":
            value += x
        elif op == "≥":
            value = max(value, x)
        else:
            value = min(value, x)
    if isinstance(current, int) and not isinstance(current, bool):
        return max(1, int(round(value))) if current > 0 else int(round(value))
    return float(f"{value:.3g}")


def direction(old: Any, new: Any) -> str:
    """``"raise"``, ``"lower"`` or ``"set:<value>"`` for a change of one path."""
    if is_relative(new):
        probe = apply_relative(1.0, new)
        return "raise" if probe > 1.0 else "lower" if probe < 1.0 else "set"
    if isinstance(new, (int, float)) and isinstance(old, (int, float)) and not isinstance(new, bool):
        return "raise" if new > old else "lower"
    return f"set:{new!r}"


def concretize(action: Action, recipe: dict | None) -> Action | None:
    """Computes the concrete patch of ``action`` for ``recipe``.

    Returns:
        A new action with concrete values and ``change`` ({path: [old, new]}), the
        relative action unchanged when there is no recipe, or None when applying it
        would change nothing.
    """
    if recipe is None:
        return action
    patch, change = {}, {}
    for path, spec in action.patch.items():
        old = get_path(recipe, path, _FIELD_DEFAULTS.get(path))
        if is_relative(spec):
            if not isinstance(old, (int, float)) or isinstance(old, bool):
                continue
            new = apply_relative(old, spec)
        elif isinstance(spec, str) and spec.startswith("+ {"):
            continue  # a textual stage suggestion needs the recipe; it has none
        else:
            new = spec
        if new == old:
            continue
        patch[path], change[path] = new, [old, new]
    if not patch:
        return None
    return Action(patch, action.why, change)


def reconcile(findings: list[Finding], recipe: dict | None) -> list[dict]:
    """Concretizes every finding's actions and drops contradicting ones, in place.

    Args:
        findings: Sorted most important first; their ``actions`` are replaced.
        recipe: The current recipe as a dict, or None.

    Returns:
        Records of dropped actions: ``{"rule", "path", "because"}``.
    """
    claimed: dict[str, tuple[str, str]] = {}  # path -> (direction, rule)
    dropped = []
    for finding in findings:
        kept = []
        for action in finding.actions:
            concrete = concretize(action, recipe)
            if concrete is None:
                continue
            conflict = None
            for path, new in concrete.patch.items():
                old = get_path(recipe, path, _FIELD_DEFAULTS.get(path))
                d = direction(old, new)
                if path in claimed and claimed[path][0] != d and claimed[path][1] != finding.rule:
                    conflict = (path, claimed[path][1])
                    break
            if conflict:
                dropped.append({"rule": finding.rule, "path": conflict[0], "because": conflict[1]})
                continue
            for path, new in concrete.patch.items():
                old = get_path(recipe, path, _FIELD_DEFAULTS.get(path))
                claimed.setdefault(path, (direction(old, new), finding.rule))
            kept.append(concrete)
        finding.actions = kept
    return dropped
