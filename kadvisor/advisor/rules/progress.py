"""Rules on where validation is going at the end: still_improving, plateau."""

from __future__ import annotations

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Action, Finding, ramp, undecided
from kadvisor.advisor.rules.generalisation import rising_validation
from kadvisor.advisor.rules.registry import rule
from kadvisor.advisor.rules.training import stalled


def tail_improvement(f: RunFeatures, th: dict) -> tuple[str, float] | None:
    """Best relative improvement of a validation curve over the last part of the run.

    Returns:
        (curve name, improvement as a fraction of the curve's level), or None when
        there is no validation curve. The curve must also still be making progress
        (its last real new best lies in that tail) and the improvement must be larger
        than the curve's average zig-zag, i.e. clear of the noise.
    """
    curves = f.val_curves()
    if not curves:
        return None
    k = max(2, int(np.ceil(th["improve_tail"] * f.n)))
    best = ("", 0.0)
    for name, v in curves:
        x = C.fill_gaps(v)
        t = C.trend(x)
        if t.size <= k:
            continue
        drop = float(t[-k - 1] - t[-1])
        gain = drop / C.level(x)
        progressing = f.progress_epoch(x, th["plateau_tolerance"]) >= t.size - k
        clear = drop > float(np.mean(C.zigzag(x)))  # beyond the epoch-to-epoch noise
        if progressing and clear and gain > best[1]:
            best = (name, gain)
    return best


def _short(f: RunFeatures, th: dict, name: str) -> Finding | None:
    if f.n < th["min_epochs"]:
        return undecided(name, f"only {f.n} epochs (fewer than advisor.min_epochs = {th['min_epochs']})")
    if not f.val_curves():
        return undecided(name, "no validation curve")
    return None


@rule("still_improving")
def still_improving(f: RunFeatures, th: dict) -> Finding | None:
    """Validation is still clearly improving over the last part of the run."""
    short = _short(f, th, "still_improving")
    if short is not None:
        return short
    name, gain = tail_improvement(f, th)
    if gain < th["improve_min"]:
        return None
    tail = max(2, int(np.ceil(th["improve_tail"] * f.n)))
    return Finding(
        "still_improving", "warning", ramp(gain, th["improve_min"] / 2, 4 * th["improve_min"]),
        f"{name} improved {100 * gain:.0f}% of its level over the last {tail} epochs and is still improving",
        {"curve": name, "gain": gain, "tail_epochs": tail},
        [Action({"train.epochs": "×2"}, "the model has not converged: train longer")],
    )


@rule("plateau")
def plateau(f: RunFeatures, th: dict) -> Finding | None:
    """Validation stopped improving well before the end, without overfitting."""
    short = _short(f, th, "plateau")
    if short is not None:
        return short
    if rising_validation(f, th) is not None:
        return None  # validation rises: that stretch is overfitting, not a plateau
    no_learning = stalled(f, th)
    if no_learning is not None and no_learning.is_problem:
        return None  # nothing was learned at all: that is `stalled`
    improving = tail_improvement(f, th)
    if improving is not None and improving[1] >= th["improve_min"]:
        return None
    last = max(f.progress_epoch(C.fill_gaps(v), th["plateau_tolerance"]) for _, v in f.val_curves())
    at = (last + 1) / f.n
    if at > th["plateau_at"]:
        return None
    wasted = f.n - 1 - last
    return Finding(
        "plateau", "warning", ramp(th["plateau_at"] - at, 0, 0.3),
        f"validation stopped improving at epoch {f.epoch_label(last)} of {f.n}: "
        f"{wasted} epochs brought no progress",
        {"last_progress_epoch": f.epoch_label(last), "fraction_of_run": at, "wasted_epochs": wasted},
        [
            Action({"schedule.name": "plateau"}, "decay the learning rate when validation stalls"),
            Action({"train.early_stopping": "≥5"}, "stop when nothing more is gained"),
            Action({"optimizer.learning_rate": "×0.3"}, "a smaller rate can settle into a better minimum"),
        ],
        epoch=f.epoch_label(last),
    )
