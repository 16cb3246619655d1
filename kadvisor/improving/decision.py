"""Keep or revert: does a round's validation objective beat the incumbent's by more than noise?

The *noise* of the incumbent run is

    noise = max(std of the objective around its straight-line trend over the
                incumbent's last `NOISE_EPOCHS` epochs, min_noise)

(the residuals of ``numpy.polyfit(epoch, value, 1)``; fewer epochs when the run has
fewer; non-finite values are left out). How much a run's own last epochs scatter with
nothing changed is how much a difference can be chance, so a smaller one is not
evidence. The trend is taken out first: a run still climbing fast would otherwise count
its own progress as noise. ``min_noise``
(default 0.005: half an accuracy point) keeps a flat incumbent — a diverged run stuck
at chance shows no spread — from making any tiny difference count.

A change is kept when ``sign * (value - incumbent) > noise`` (sign +1 when higher is
better, -1 for a loss). The value of a run is its objective at the epoch whose model
it saved (``metrics.json`` ``best``: the epoch ``train.monitor`` chose), so the
reported test metric belongs to the same model. Nothing here reads the test split.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from kadvisor.improving.rounds import KEPT, REVERTED

NOISE_EPOCHS = 5
MIN_NOISE = 0.005


def run_value(metrics: dict, objective: str) -> float:
    """The objective at the saved model's epoch (NaN when the run did not log it)."""
    value = (metrics.get("best") or {}).get(objective)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def noise(curve: Iterable[float], min_noise: float = MIN_NOISE, last: int = NOISE_EPOCHS) -> float:
    """The noise of a run's objective curve (see the module docstring)."""
    values = np.array([v for v in curve if isinstance(v, (int, float))], dtype=float)
    values = values[np.isfinite(values)][-last:]
    if values.size < 3:  # two points lie on their line: no scatter to measure
        return float(min_noise)
    epochs = np.arange(values.size, dtype=float)
    residuals = values - np.polyval(np.polyfit(epochs, values, 1), epochs)
    spread = float(np.std(residuals))
    return max(spread, float(min_noise))


def better(value: float, incumbent: float, margin: float, higher_is_better: bool) -> bool:
    """Whether ``value`` beats ``incumbent`` by more than ``margin``.

    A non-finite value never beats anything; anything finite beats a non-finite
    incumbent (a run that logged no objective at all).
    """
    if not math.isfinite(value):
        return False
    if not math.isfinite(incumbent):
        return True
    sign = 1.0 if higher_is_better else -1.0
    return sign * (value - incumbent) > margin


def decide(value: float, incumbent: float, margin: float, higher_is_better: bool) -> str:
    """``"kept"`` or ``"reverted"``."""
    return KEPT if better(value, incumbent, margin, higher_is_better) else REVERTED
