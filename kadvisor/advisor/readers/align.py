"""Putting logged points in order: restarts, duplicates, reversed rows, per-step values.

Two shapes of log reach the advisor:

- tables with one row per epoch (Keras ``CSVLogger``, History dumps), whose epoch
  column may restart (several runs appended to one file, or ``append=True`` after a
  resume that repeats the last epochs) or run backwards (a file sorted the wrong way);
  `order_rows` keeps one row per epoch of the last run;
- series of ``(step, value)`` per metric (TensorBoard, MLflow, Lightning, Hugging Face),
  where training values are often logged every few steps and validation once per
  epoch or evaluation; `align` reduces them to one point per evaluation (the mean of
  the training values since the previous one).

Both say what they did in notes, which the report shows.
"""

from __future__ import annotations

import math

import numpy as np


def order_rows(epochs: list[float | None], loss: list[float | None] | None = None) -> tuple[list[int], list[float] | None, list[str]]:
    """Chooses the rows of the last run, one per epoch, in epoch order.

    The epoch counter going back to where it started means a new run — unless the loss
    goes on from where it stopped (``model.fit`` called again on the same model, which
    restarts Keras's counter): then the rows are one run, in file order. Going back
    less far is a resume that logged some epochs again: the later rows replace them.

    Args:
        epochs: The epoch of each row (None when a row has none).
        loss: The training loss of each row, to tell a new run from a continued one.

    Returns:
        (indices of the rows to keep, new epoch labels or None to keep the logged
        ones, notes).
    """
    n = len(epochs)
    if n < 2 or any(e is None or not math.isfinite(e) for e in epochs):
        return list(range(n)), None, []
    if all(a > b for a, b in zip(epochs, epochs[1:])):
        return list(range(n - 1, -1, -1)), None, ["rows were in reverse epoch order: read from the last row up"]
    first = epochs[0]
    kept: list[int] = []
    runs, repeated, continued = 1, 0, 0
    for i, e in enumerate(epochs):
        if kept and e <= epochs[kept[-1]]:
            if e <= first and _continues(loss, kept, i):
                continued += 1
            elif e <= first:  # the counter starts again from the beginning: a new run
                runs += 1
                kept, repeated, continued = [], 0, 0
            else:
                drop = [k for k in kept if epochs[k] >= e]
                repeated += len(drop)
                kept = [k for k in kept if epochs[k] < e]
        kept.append(i)
    notes = []
    if runs > 1:
        notes.append(f"the epoch counter restarts with a new run {runs - 1} time{'s' if runs > 2 else ''}: "
                     f"{runs} runs appended in one file; diagnosing the last ({len(kept)} rows)")
    relabel = None
    if continued:
        relabel = [float(epochs[kept[0]] + j) for j in range(len(kept))]
        notes.append(f"the epoch counter restarts {continued} time{'s' if continued > 1 else ''} while the loss goes on "
                     f"where it stopped (fit called again on the same model): read as one run of {len(kept)} epochs "
                     f"in file order")
    if repeated:
        notes.append(f"{repeated} epoch{'s were' if repeated > 1 else ' was'} logged twice (a restart that "
                     f"appended to the log): the later rows are used")
    return kept, relabel, notes


def _continues(loss: list[float | None] | None, kept: list[int], i: int) -> bool:
    """Whether row ``i``'s loss is nearer the last kept row's than the run's first."""
    if loss is None:
        return False
    new, last, start = loss[i], loss[kept[-1]], loss[kept[0]]
    if any(v is None or not math.isfinite(v) for v in (new, last, start)):
        return False
    return abs(new - last) <= abs(new - start)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def dedupe(points: list[tuple[float, float]]) -> tuple[list[tuple[float, float]], int]:
    """Sorts ``(step, value)`` points by step; a step logged again keeps its last value.

    Returns:
        (points, how many repeated steps were replaced).
    """
    by_step: dict[float, float] = {}
    for step, value in points:
        by_step[step] = value  # points come in the order they were written
    return sorted(by_step.items()), len(points) - len(by_step)


def align(series: dict[str, list[tuple[float, float]]], unit: str = "step") -> tuple[np.ndarray, dict[str, list[float]], list[str]]:
    """Reduces per-metric ``(step, value)`` series to one point per evaluation.

    The points are the steps where validation was logged (all validation series
    together), or — with no validation — the steps of the sparsest series. A series
    logged more often than that (training loss per batch) is averaged over the steps
    since the previous point; a sparser one is NaN where it has no value.

    Args:
        series: Advisor name → points, in the order written.
        unit: What a step counts ("epoch", "step"), for the notes.

    Returns:
        (steps of the points, name → values, notes).
    """
    notes: list[str] = []
    clean: dict[str, list[tuple[float, float]]] = {}
    replaced = 0
    for name, points in series.items():
        clean[name], extra = dedupe(points)
        replaced += extra
    if replaced:
        notes.append(f"{replaced} {unit}s logged more than once (a run restarted into the same log): the later values are used")
    val = [n for n in clean if n.startswith("val_") and clean[n]]
    if val:
        ref = sorted({s for n in val for s, _ in clean[n]})
    else:
        ref = min((sorted({s for s, _ in p}) for p in clean.values() if p), key=len, default=[])
    ref_arr = np.asarray(ref, dtype=float)
    out: dict[str, list[float]] = {}
    reduced = []
    for name, points in clean.items():
        steps = [s for s, _ in points]
        if set(steps) <= set(ref):
            lookup = dict(points)
            out[name] = [lookup.get(s, math.nan) for s in ref]
            continue
        values = [math.nan] * len(ref)
        for i, step in enumerate(ref):
            lo = ref[i - 1] if i else -math.inf
            window = [v for s, v in points if lo < s <= step]
            if window:
                values[i] = float(np.mean(window))
        out[name] = values
        reduced.append(f"{name} ({len(points)} points)")
    train = [n for n in out if not n.startswith("val_") and n not in ("lr", "learning_rate")]
    tail = len(ref)
    while train and tail > 1 and all(math.isnan(out[n][tail - 1]) for n in train):
        tail -= 1  # a validation after training ended (Lightning's trainer.validate): no training values
    if tail < len(ref):
        notes.append(f"the last {len(ref) - tail} point{'s have' if len(ref) - tail > 1 else ' has'} validation "
                     f"values only (an evaluation after training): not used")
        ref, ref_arr = ref[:tail], ref_arr[:tail]
        out = {n: v[:tail] for n, v in out.items()}
    if reduced:
        what = "validation" if val else "sparsest series"
        notes.append(f"per-{unit} values reduced to the {len(ref)} {what} points (mean since the previous one): "
                     + ", ".join(reduced[:6]))
    return ref_arr, out, notes


def epoch_labels(steps: np.ndarray, unit: str) -> tuple[np.ndarray, list[str]]:
    """Epoch numbers for aligned points: the steps when they count epochs (or are
    consecutive), else 0, 1, 2… with a note naming the steps."""
    n = len(steps)
    if unit == "epoch" or n == 0 or (np.all(np.diff(steps) == 1) and steps[0] in (0, 1)):
        return np.asarray(steps, dtype=float), []
    return np.arange(n, dtype=float), [f"points numbered 0–{n - 1} (logged at {unit}s {_fmt(steps[0])}…{_fmt(steps[-1])})"]
