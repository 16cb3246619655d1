"""Findings and actions: what the advisor says, as data (see DESIGN.md).

A `Finding` names one problem (the rule id), how bad it is (``severity``), how sure the
rule is (``confidence`` in [0, 1]), one sentence with the numbers (``summary``), the
numbers themselves (``evidence``) and ranked `Action` s — each a recipe patch.

Severity is one of:

- ``"error"``: the run is broken (diverged, stalled); fix before anything else.
- ``"warning"``: a problem worth the next experiment (overfitting, plateau, ...).
- ``"info"``: a remark, or a rule that *cannot judge* this run; then ``status`` is
  ``"undecided"`` and ``summary`` says why (too few epochs, no validation column).

Only ``error`` and ``warning`` findings with status ``"found"`` are problems.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


@dataclass
class Action:
    """One recommended change.

    Attributes:
        patch: Dotted recipe path → new value. Without a recipe the value may be a
            relative change such as ``"×0.2"`` or ``"+30"``.
        why: One sentence saying why this helps.
        change: Dotted path → ``[old, new]`` when the old value is known.
    """

    patch: dict[str, Any]
    why: str
    change: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready form; ``change`` only when it says something."""
        out = {"patch": dict(self.patch), "why": self.why}
        if self.change:
            out["change"] = {k: list(v) for k, v in self.change.items()}
        return out


@dataclass
class Finding:
    """One diagnosed problem (or a rule's statement that it cannot judge).

    Attributes:
        rule: The rule id (``"overfitting"``).
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        confidence: How sure the rule is, in [0, 1].
        summary: One sentence with the numbers.
        evidence: The numbers (JSON-safe: NaN/inf become None).
        actions: Ranked recommendations, best first.
        status: ``"found"`` or ``"undecided"``.
        epoch: The epoch the finding points at (best epoch, divergence point), if any.
    """

    rule: str
    severity: str
    confidence: float
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    status: str = "found"
    epoch: int | None = None

    @property
    def is_problem(self) -> bool:
        """True for found errors and warnings (what the scoring counts)."""
        return self.status == "found" and self.severity in ("error", "warning")

    def sort_key(self) -> tuple:
        """Most severe first, then most confident, then by name (stable output)."""
        return (self.status != "found", _SEVERITY_RANK.get(self.severity, 3), -self.confidence, self.rule)

    def to_dict(self) -> dict:
        """JSON-ready dict in the DESIGN.md finding schema."""
        out = asdict(self)
        out["confidence"] = round(float(self.confidence), 3)
        out["evidence"] = json_safe(self.evidence)
        out["actions"] = [a.to_dict() for a in self.actions]
        return json_safe(out)


def undecided(rule: str, reason: str, **evidence: Any) -> Finding:
    """A finding saying the rule cannot judge this run, and why."""
    return Finding(rule, "info", 0.0, f"cannot judge {rule}: {reason}", evidence, status="undecided")


def clamp01(x: float) -> float:
    """Clamps to [0, 1]; NaN becomes 0."""
    if x is None or not math.isfinite(x):
        return 0.0
    return max(0.0, min(1.0, float(x)))


def ramp(x: float, low: float, high: float) -> float:
    """0 at ``low``, 1 at ``high``, linear between: turns a margin into confidence."""
    if high == low:
        return 1.0 if x >= high else 0.0
    return clamp01((x - low) / (high - low))


def json_safe(obj: Any) -> Any:
    """Recursively converts numpy scalars to Python and NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (ValueError, TypeError):
            return str(obj)
    if isinstance(obj, float):
        return round(obj, 6) if math.isfinite(obj) else None
    return obj
