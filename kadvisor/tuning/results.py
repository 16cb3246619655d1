"""What a search found: trial rows, ``leaderboard.csv``, the progress line, edge warnings.

A `TrialRow` is a KerasTuner trial in recipe terms: its values as a dotted-path patch
and the metrics `RecipeHyperModel.fit` reported (objective, epochs, seconds).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kadvisor.recipe.paths import PathError, show, validate
from kadvisor.recipe.schema import Recipe
from kadvisor.rundir import write_text_atomic
from kadvisor.tuning.hyperparameters import TUNER_PREFIX, searched_values

# Within this fraction of a range's width (log width for log_uniform) of an end, the
# best value "sits at the edge": the optimum may lie outside the range.
EDGE_FRACTION = 0.05


@dataclass
class TrialRow:
    """One trial of a search.

    Attributes:
        trial_id: KerasTuner's id ("0007").
        status: COMPLETED, FAILED, INVALID, RUNNING, ...
        score: The objective (None until completed).
        values: Dotted path → recipe value of the searched fields.
        epochs: Epochs the model had trained in all at the end of the trial.
        trained: Epochs run in this trial (Hyperband continues earlier trials).
        continues: Id of the trial whose weights this one continued, or "".
        seconds: Wall time of the trial.
        message: Last line of the error of a failed trial.
    """

    trial_id: str
    status: str
    score: float | None
    values: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    trained: int | None = None
    continues: str = ""
    seconds: float | None = None
    message: str = ""

    @property
    def completed(self) -> bool:
        return self.status == "COMPLETED" and self.score is not None and math.isfinite(self.score)


def trial_row(trial, space) -> TrialRow:
    """The `TrialRow` of a KerasTuner ``Trial``."""
    values = trial.hyperparameters.values
    metrics = trial.metrics

    def last(name):
        return metrics.get_last_value(name) if metrics.exists(name) else None

    epochs, trained = last("epochs"), last("trained")
    return TrialRow(
        trial_id=str(trial.trial_id),
        status=str(trial.status),
        score=None if trial.score is None else float(trial.score),
        values=searched_values(space, values),
        epochs=None if epochs is None else int(round(epochs)),
        trained=None if trained is None else int(round(trained)),
        continues=str(values.get(f"{TUNER_PREFIX}trial_id", "")),
        seconds=last("seconds"),
        message=last_error_line(trial.message),
    )


def last_error_line(message) -> str:
    """The last line of a trial's error (KerasTuner keeps the whole traceback)."""
    lines = [line for line in str(message or "").splitlines() if line.strip()]
    if not lines:
        return ""
    # "keras_tuner.src.errors.FailedTrialError: model.head: ..." → "model.head: ..."
    head, sep, rest = lines[-1].partition(": ")
    return rest if sep and "Error" in head and " " not in head else lines[-1]


def ranked(rows: list[TrialRow], direction: str) -> list[TrialRow]:
    """Completed trials best first, then the others in trial order."""
    sign = -1 if direction == "max" else 1
    done = sorted((r for r in rows if r.completed), key=lambda r: (sign * r.score, r.trial_id))
    return done + sorted((r for r in rows if not r.completed), key=lambda r: r.trial_id)


def distinct_top(rows: list[TrialRow], direction: str, top: int | None = None) -> list[TrialRow]:
    """The ``top`` best completed trials with distinct values.

    Hyperband continues a trial under a new id with the same values; each set of
    values counts once, at its best score.
    """
    seen, out = set(), []
    for row in ranked(rows, direction):
        key = repr(sorted(row.values.items()))
        if row.completed and key not in seen:
            seen.add(key)
            out.append(row)
    return out if top is None else out[:top]


def format_value(value: Any) -> str:
    """A recipe value as a short TOML-like text (``0.000312``, ``true``, ``[32, 32]``)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return show(value)


def leaderboard_text(rows: list[TrialRow], objective: str, direction: str, paths: list[str]) -> str:
    """``leaderboard.csv``: one row per trial, best first.

    Columns: rank, trial, status, the objective, epochs, trained, continues,
    seconds, then one column per searched path.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "trial", "status", objective, "epochs", "trained", "continues", "seconds", *paths])
    for rank, row in enumerate(ranked(rows, direction), start=1):
        writer.writerow([
            rank if row.completed else "", row.trial_id, row.status,
            "" if row.score is None else f"{row.score:.6g}",
            _blank(row.epochs), _blank(row.trained), row.continues, _blank(row.seconds),
            *("" if p not in row.values else format_value(row.values[p]) for p in paths),
        ])
    return out.getvalue()


def _blank(value) -> str:
    return "" if value is None else str(value)


def write_leaderboard(path: Path, rows, objective: str, direction: str, paths: list[str]) -> None:
    """Writes ``leaderboard.csv`` atomically."""
    write_text_atomic(path, leaderboard_text(rows, objective, direction, paths))


def trial_line(row: TrialRow, best: TrialRow | None, objective: str, count: str = "") -> str:
    """The one progress line of a finished trial, with the best so far.

    Args:
        count: How far the search is, e.g. "3/10" (finished of max_trials), or "".
    """
    number = f"trial {row.trial_id}" + (f" ({count})" if count else "")
    values = ", ".join(f"{p}={format_value(v)}" for p, v in row.values.items())
    if not row.completed:
        text = f"{number} {row.status.lower()}" + (f": {row.message}" if row.message else "")
        return f"{text} [{values}]"
    seconds = f", {row.seconds:.1f} s" if row.seconds is not None else ""
    budget = f"{row.epochs} epoch{'s' if row.epochs != 1 else ''}" if row.epochs is not None else "done"
    text = f"{number} {objective} {row.score:.4f} ({budget}{seconds}) [{values}]"
    if best is not None:
        text += f" | best {best.score:.4f} (trial {best.trial_id})"
    return text


def edge_warnings(space, best: TrialRow) -> dict[str, str]:
    """Path → warning for each best value at the edge of its range, saying how to widen it."""
    warnings = {}
    for dist in space:
        if dist.path not in best.values:
            continue
        value = best.values[dist.path]
        if dist.numeric:
            message = _range_edge(dist, value)
        elif dist.kind == "choice" and len(dist.choices) >= 3 and all(_is_number(c) for c in dist.choices):
            message = _choice_edge(dist, value)
        else:
            message = None
        if message:
            warnings[dist.path] = message
    return warnings


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _position(dist, value) -> float:
    if dist.kind == "log_uniform":
        return (math.log(value) - math.log(dist.low)) / (math.log(dist.high) - math.log(dist.low))
    return (value - dist.low) / (dist.high - dist.low)


def _range_edge(dist, value) -> str | None:
    position = _position(dist, value)
    if EDGE_FRACTION < position < 1 - EDGE_FRACTION:
        return None
    top = position >= 1 - EDGE_FRACTION
    widened = _widened(dist, top)
    if widened is None:  # the range already reaches the field's own limit
        return None
    low, high = (dist.low, widened) if top else (widened, dist.high)
    return (
        f"{dist.path}: the best value {format_value(value)} is at the {'top' if top else 'bottom'} of "
        f"its range [{format_value(dist.low)}, {format_value(dist.high)}]; widen the range, e.g. "
        f"{{ {dist.kind} = [{format_value(low)}, {format_value(high)}] }}"
    )


def _widened(dist, top: bool):
    """A valid new end beyond the range, or None when the field allows none."""
    for shrink in (1, 2, 4, 8):
        end = _beyond(dist, top, shrink)
        if end is None:
            return None
        try:
            return validate(Recipe, dist.path, end)
        except PathError:  # past the field's own limit: try a shorter reach
            continue
    return None


def _beyond(dist, top: bool, shrink: int):
    edge = dist.high if top else dist.low
    if dist.kind == "log_uniform":
        factor = 10 ** (1 / shrink)
        end = edge * factor if top else edge / factor
    else:
        reach = (dist.high - dist.low) / 2 / shrink
        if dist.integer:  # whole steps, so the old grid carries on
            step = int(dist.step or 1)
            reach = step * max(1, round(reach / step))
        end = edge + reach if top else edge - reach
    if dist.integer:
        end = math.ceil(end) if top else math.floor(end)
        return None if end == edge else end
    return float(f"{end:.3g}")


def _choice_edge(dist, value) -> str | None:
    ordered = sorted(dist.choices)
    if value not in (ordered[0], ordered[-1]):
        return None
    side = "largest" if value == ordered[-1] else "smallest"
    return (
        f"{dist.path}: the best value {format_value(value)} is the {side} choice of "
        f"{show(list(dist.choices))}; widen the range with a value beyond it"
    )
