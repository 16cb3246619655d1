"""Curve features: the numbers the rules read from a learning curve.

All functions take a 1-D float array (one value per epoch, NaN allowed) and never
raise on odd input — empty, constant, NaN, inf or huge values give NaN/neutral answers.
A curve is first made *comparable*: metrics where higher is better (accuracy, AUC,
dice, IoU) are negated so that, everywhere in the rules, lower is better.

The trend of a curve is a running median (robust to the single-epoch spikes that real
validation curves have) followed by a short running mean; noise is measured as the
residual around that trend, so "noisy" means "moves more than its trend does".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# Name fragments of metrics where lower is better; everything else (accuracy, auc,
# dice, iou, precision, recall, f1, top-k) is higher-is-better.
_LOWER_IS_BETTER = re.compile(
    r"(loss|error|mae|mse|rmse|mape|msle|crossentropy|hinge|divergence|poisson|logcosh|perplexity|distance)",
    re.IGNORECASE,
)
# Metrics preferred as "the" metric of a run, most preferred first.
_METRIC_PREFERENCE = (
    "accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy",
    "binary_accuracy", "dice_coef", "dice_score", "dice", "iou_score", "iou",
    "mean_io_u", "f1_score", "f1", "auc", "mae", "mean_absolute_error",
    "mse", "mean_squared_error", "rmse",
)
LR_COLUMNS = ("lr", "learning_rate")
_NOT_METRICS = set(LR_COLUMNS) | {"epoch", "seconds", "stage", "time", "duration"}


def higher_is_better(name: str) -> bool:
    """Whether larger values of metric ``name`` are better (accuracy yes, loss no)."""
    base = name[4:] if name.startswith("val_") else name
    return not _LOWER_IS_BETTER.search(base)


def pick_metric(columns: dict[str, np.ndarray]) -> str | None:
    """Chooses the main non-loss metric of a run (one with a ``val_`` twin if possible).

    Args:
        columns: Column name → values.

    Returns:
        The training metric's name (without ``val_``), or None when there is none.
    """
    names = [
        c for c in columns
        if not c.startswith("val_") and c not in _NOT_METRICS and not c.endswith("loss")
    ]
    if not names:
        return None

    def rank(name: str) -> tuple[int, int]:
        base = re.sub(r"_\d+$", "", name)  # mean_io_u_5 → mean_io_u
        twin = 0 if f"val_{name}" in columns else 1
        try:
            pref = _METRIC_PREFERENCE.index(base)
        except ValueError:
            pref = len(_METRIC_PREFERENCE) + (0 if "acc" in base else 1)
        return twin, pref

    return min(names, key=rank)


def as_lower_better(values: np.ndarray, name: str) -> np.ndarray:
    """Returns the curve oriented so that lower is better (metrics negated)."""
    values = np.asarray(values, dtype=float)
    return -values if higher_is_better(name) else values


def finite(values: np.ndarray) -> np.ndarray:
    """The finite values of a curve, in order."""
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def first_nonfinite(values: np.ndarray) -> int | None:
    """Index of the first NaN/inf value, or None when every value is finite."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=float)))
    return int(bad[0]) if bad.size else None


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """Replaces NaN/inf by the previous finite value (first ones by the next)."""
    values = np.asarray(values, dtype=float).copy()
    ok = np.isfinite(values)
    if not ok.any():
        return np.zeros_like(values)
    idx = np.where(ok, np.arange(values.size), 0)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.flatnonzero(ok)[0])
    idx[:first] = first
    return values[idx]


def default_window(n: int) -> int:
    """Odd smoothing window: about a tenth of the run, between 3 and 21 epochs."""
    w = int(round(n / 10))
    w = max(3, min(21, w))
    return w if w % 2 else w + 1


def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median; the window shrinks at the ends (no padding bias)."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0 or window <= 1:
        return x.copy()
    half = window // 2
    if n > 2 * half:
        # Vectorised interior, explicit edges: fast for 1,000+ epoch logs.
        view = np.lib.stride_tricks.sliding_window_view(x, 2 * half + 1)
        out = np.empty(n)
        out[half : n - half] = np.median(view, axis=1)
        for i in list(range(half)) + list(range(n - half, n)):
            out[i] = np.median(x[max(0, i - half) : i + half + 1])
        return out
    return np.array([np.median(x[max(0, i - half) : i + half + 1]) for i in range(n)])


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean with shrinking windows at the ends."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0 or window <= 1:
        return x.copy()
    half = window // 2
    csum = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    return (csum[hi] - csum[lo]) / (hi - lo)


def trend(values: np.ndarray, window: int | None = None) -> np.ndarray:
    """Robust trend of a curve: running median, then a 3-epoch running mean.

    Args:
        values: The curve (NaN/inf are filled from the previous finite value).
        window: Median window in epochs; `default_window` when None.

    Returns:
        The smoothed curve, same length.
    """
    x = fill_gaps(values)
    with np.errstate(all="ignore"):
        if window is None:
            window = default_window(x.size)
        return running_mean(running_median(x, window), 3)


def slope(values: np.ndarray) -> float:
    """Least-squares slope per epoch (NaN when fewer than 2 finite values)."""
    y = np.asarray(values, dtype=float)
    t = np.arange(y.size, dtype=float)
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    with np.errstate(all="ignore"):
        t, y = t[ok], y[ok]
        t = t - t.mean()
        denom = float((t * t).sum())
        return float((t * (y - y.mean())).sum() / denom) if denom else float("nan")


def visible_range(values: np.ndarray) -> float:
    """The range a plot of the curve shows: 2nd to 98th percentile of its finite values.

    The unit in which "large" and "small" are judged, as a reader of the plot would:
    a wiggle of 0.01 is invisible on a loss falling from 30 and glaring on one moving
    between 0.20 and 0.25. Percentiles keep one wild value from setting the scale.
    """
    x = finite(values)
    if x.size < 2:
        return 0.0
    with np.errstate(all="ignore"):
        out = float(np.percentile(x, 98) - np.percentile(x, 2))
    return out if np.isfinite(out) else 0.0


def zigzag(values: np.ndarray) -> np.ndarray:
    """Zig-zag amplitude at each interior epoch (0 where the curve does not reverse).

    At a local extremum the amplitude is the smaller of the two steps to its
    neighbours, so a monotone curve — however steep — scores 0 everywhere, and a
    one-epoch spike scores its height.
    """
    x = fill_gaps(values)
    if x.size < 3:
        return np.zeros(0)
    with np.errstate(all="ignore"):
        before = x[1:-1] - x[:-2]
        after = x[1:-1] - x[2:]
        amp = np.where(before * after > 0, np.minimum(np.abs(before), np.abs(after)), 0.0)
    return np.nan_to_num(amp, nan=0.0, posinf=0.0)


def zigzag_rms(values: np.ndarray) -> float:
    """Root-mean-square zig-zag amplitude: the typical size of an up-and-down jump.

    The square weights big reversals over many tiny ones, as the eye does.
    """
    z = zigzag(values)
    if z.size == 0:
        return 0.0
    with np.errstate(all="ignore"):
        out = float(np.sqrt(np.mean(z * z)))
    return out if np.isfinite(out) else 0.0


def noise_ratio(values: np.ndarray) -> float:
    """`zigzag_rms` as a fraction of `visible_range` (0 for fewer than 5 values).

    Scale-free: "the curve jumps up and down by 10% of what the plot shows per epoch".
    The range is floored at a tenth of the curve's size, as `RunFeatures.panel_span` is:
    a reader reads the axis too, and a loss wobbling 14.70-14.80 is flat, not noisy.
    """
    x = finite(values)
    if x.size < 5:
        return 0.0
    with np.errstate(all="ignore"):  # |x| near the float limit overflows the median
        span = max(visible_range(x), 0.1 * float(np.median(np.abs(x))))
        out = zigzag_rms(x) / span if span > 0 else 0.0
    return out if np.isfinite(out) else 0.0


def window_change(values: np.ndarray, k: int) -> float:
    """How much the curve fell from the ``k`` epochs before the last ``k`` to the last ``k``.

    The difference of the two windows' medians (positive = lower at the end), so one
    spike in either window does not decide. NaN when there are fewer than ``2k`` values.
    """
    x = fill_gaps(values)
    if k < 1 or x.size < 2 * k:
        return float("nan")
    return float(np.median(x[-2 * k : -k]) - np.median(x[-k:]))


def pace_ratio(values: np.ndarray) -> float:
    """Slope over the last quarter divided by the slope over the quarter before it.

    About 1 for a curve still falling in a straight line, near 0 for one flattening
    out; NaN when the earlier quarter does not fall (or fewer than 4 values).
    """
    x = fill_gaps(values)
    q = x.size // 4
    if q < 2:
        return float("nan")
    before, last = slope(x[-2 * q : -q]), slope(x[-q:])
    if not (np.isfinite(before) and before < 0):
        return float("nan")
    return float(last / before)


def settled_index(values: np.ndarray) -> int:
    """First epoch index where the trend entered its final noise band: within one
    `zigzag_rms` (measured over the second half of the run) of its best value.

    For a noisy curve that flattened, that is where the flat stretch began; a smooth
    curve that is still creeping down has no noise band, so it settles at its last
    new low. 0 for an empty curve.
    """
    x = fill_gaps(values)
    if x.size == 0:
        return 0
    with np.errstate(all="ignore"):
        t = trend(x)
        band = zigzag_rms(x[x.size // 2 :])
        hits = np.flatnonzero(t <= np.min(t) + band)
    return int(hits[0]) if hits.size else int(np.argmin(t))


def level(values: np.ndarray, floor_fraction: float = 0.1) -> float:
    """The typical size of a lower-is-better, non-negative curve late in the run.

    The median of the trend over the second half, floored at ``floor_fraction`` of the
    trend's range so that a loss that reaches ~0 does not make every wiggle "huge".
    """
    x = fill_gaps(values)
    if x.size == 0:
        return float("nan")
    with np.errstate(all="ignore"):
        t = trend(x)
        late = float(np.median(np.abs(t[t.size // 2 :])))
        spread = float(np.max(t) - np.min(t))
    value = max(late, floor_fraction * spread, 1e-12)
    return value if np.isfinite(value) else float("nan")


def change_points(values: list[str] | np.ndarray) -> list[int]:
    """Epoch indices where a column (``stage`` or ``lr``) changes value."""
    out = []
    prev = None
    for i, v in enumerate(values):
        if isinstance(v, float) and not np.isfinite(v):
            continue
        if prev is not None and v != prev:
            if not (isinstance(v, float) and isinstance(prev, float) and np.isclose(v, prev, rtol=1e-3)):
                out.append(i)
        prev = v
    return out
