"""One row per round of ``kadvisor improve``: `RoundRow`, ``rounds.csv`` and the progress line.

A round is one trained recipe: round 0 the user's recipe, each later round the best
recipe so far with one advisor action applied. ``rounds.csv`` has the columns

    round, finding, change, <objective>, noise, test_<metric>, epochs, seconds, decision, run

``<objective>`` (``val_accuracy`` by default) is what the decisions compare; ``noise``
is the margin the round had to beat (see `kadvisor.improving.decision`); the test
metric is reported only, never used to decide. ``decision`` is ``baseline`` (round 0),
``kept``, ``reverted`` or ``failed`` (the fit raised; the change is reverted).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kadvisor.rundir import write_text_atomic

BASELINE, KEPT, REVERTED, FAILED = "baseline", "kept", "reverted", "failed"


@dataclass
class RoundRow:
    """What one round trained and what was decided.

    Attributes:
        round: 0 for the user's recipe, then 1, 2, ...
        finding: The advisor finding whose action this round tried ("" for round 0).
        change: The action as ``path: old → new`` ("" for round 0).
        patch: Dotted path → new value of that action.
        was: Dotted path → the value it replaced in the incumbent's recipe.
        value: The validation objective of the run (its best-epoch value; NaN if none).
        noise: The margin ``value`` had to beat the incumbent's by to be kept.
        test: The test metric of the run's saved model (reported only; NaN if none).
        epochs: Epochs the round trained.
        seconds: Wall time of the round's fit.
        decision: ``baseline``, ``kept``, ``reverted`` or ``failed``.
        run: The round's run directory, relative to the improve directory.
        error: The one-line error of a failed round.
    """

    round: int
    finding: str
    change: str
    patch: dict[str, Any] = field(default_factory=dict)
    was: dict[str, Any] = field(default_factory=dict)
    value: float = math.nan
    noise: float = math.nan
    test: float = math.nan
    epochs: int = 0
    seconds: float = 0.0
    decision: str = BASELINE
    run: str = ""
    error: str = ""

    def to_json(self) -> dict:
        """JSON-ready form (NaN becomes None) for ``improve.json``."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, obj: dict) -> "RoundRow":
        """The inverse of `to_json`."""
        values = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        for k in ("value", "noise", "test"):
            values[k] = math.nan if values.get(k) is None else float(values[k])
        return cls(**values)


def columns(objective: str) -> list[str]:
    """The header of ``rounds.csv`` for this objective."""
    return ["round", "finding", "change", objective, "noise", test_name(objective), "epochs",
            "seconds", "decision", "run"]


def test_name(objective: str) -> str:
    """``val_accuracy`` → ``test_accuracy``: the same metric on the test split."""
    return "test_" + objective.removeprefix("val_")


def _number(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else ""


def rounds_text(rows: list[RoundRow], objective: str) -> str:
    """The CSV text of ``rounds.csv``, rounds in order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns(objective))
    for r in rows:
        writer.writerow([r.round, r.finding, r.change, _number(r.value), _number(r.noise), _number(r.test),
                         r.epochs, f"{r.seconds:.1f}", r.decision, r.run])
    return out.getvalue()


def write_rounds(path: Path, rows: list[RoundRow], objective: str) -> None:
    """Writes ``rounds.csv`` atomically (a kill leaves the previous version)."""
    write_text_atomic(path, rounds_text(rows, objective))


def read_rounds(path: Path) -> list[dict[str, str]]:
    """``rounds.csv`` as string rows (for people and tests; ``improve.json`` is the state)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def round_line(row: RoundRow, objective: str, incumbent: RoundRow | None) -> str:
    """The one progress line of a finished round.

    Args:
        row: The round.
        objective: The validation objective's name.
        incumbent: The best round before this one (None for round 0).
    """
    test = f"test {_number(row.test) or 'n/a'} (reported only)"
    cost = f"{row.epochs} epoch{'s' if row.epochs != 1 else ''}, {row.seconds:.1f} s"
    if incumbent is None:
        return f"round {row.round}: the recipe as given: {objective} {_number(row.value) or 'n/a'}; {test}; {cost}"
    head = f"round {row.round}: {row.finding}: {row.change}"
    if row.decision == FAILED:
        return f"{head}: failed ({row.error}); reverted; {cost}"
    delta = row.value - incumbent.value if math.isfinite(row.value) and math.isfinite(incumbent.value) else math.nan
    gain = f"{delta:+.4f}" if math.isfinite(delta) else "n/a"
    return (f"{head}: {objective} {_number(row.value) or 'n/a'} ({gain} vs round {incumbent.round}, "
            f"noise {row.noise:.4f}) {row.decision}; {test}; {cost}")
