"""Rules on where validation is going at the end: still_improving, plateau."""

from __future__ import annotations

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Action, Finding, ramp, undecided
from kadvisor.advisor.rules.generalisation import overfitting, rising_validation
from kadvisor.advisor.rules.registry import rule
from kadvisor.advisor.rules.training import diverged, stalled


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
    improving = f.improving_curve(th)
    if improving is None or rising_validation(f, th) is not None:
        return None  # a validation loss that rose past its minimum is not "still improving"
    if any(f.best_index(v) < f.n // 2 for _, v in f.val_curves()):
        return None  # another validation curve peaked in the first half: not improving as a whole
    name, gain = improving
    tail = f.tail_epochs(th)
    return Finding(
        "still_improving", "warning", ramp(gain, th["improve_min"] / 2, 4 * th["improve_min"]),
        f"{name} improved by {100 * gain:.0f}% of its plot's height over the last {tail} epochs "
        f"(median against the {tail} before) and is still improving",
        {"curve": name, "gain": gain, "tail_epochs": tail},
        [Action({"train.epochs": "×2"}, "the model has not converged: train longer")],
    )


def settled_epoch(f: RunFeatures) -> int:
    """The epoch after which validation made no more progress, read on ``val_loss``
    when logged, else on the metric — the curve a plateau schedule would monitor.

    Either of two things shows it, so the earlier counts: the trend entered its final
    noise band (`curves.settled_index`: robust for a noisy flat curve, whose single best
    epoch falls anywhere in the band), or no later epoch beat the best one (the
    rubric's "best epoch": it catches a smooth curve creeping within a hair of a best
    reached early, where the band is too thin to have been entered).
    """
    curve = f.val_curves()[0][1]
    return min(C.settled_index(curve), f.best_index(curve))


@rule("plateau")
def plateau(f: RunFeatures, th: dict) -> Finding | None:
    """Validation stopped improving well before the end, without overfitting."""
    short = _short(f, th, "plateau")
    if short is not None:
        return short
    generalises = overfitting(f, th)
    if generalises is not None and generalises.is_problem:
        return None  # validation rises, or flat while training pulls away: overfitting
    for broken in (stalled, diverged):  # nothing learned, or the loss blew up: their early
        found = broken(f, th)           # best epoch is not a plateau to decay the rate on
        if found is not None and found.is_problem:
            return None
    improving = still_improving(f, th)
    if improving is not None and improving.is_problem:
        return None  # the rubric's two exclude each other; one curve creeping up is not enough
    last = settled_epoch(f)
    at = (last + 1) / f.n
    if at > th["plateau_at"]:
        return None
    wasted = f.n - 1 - last
    name, curve = f.val_curves()[0]
    band = C.zigzag_rms(C.fill_gaps(curve)[f.n // 2 :])
    decays = [] if f.lr is None else [i for i in C.change_points(C.fill_gaps(f.lr)) if i > last]
    stop = Action({"train.early_stopping": "≥5"}, "stop when nothing more is gained")
    if decays:  # the learning rate was already lowered on the flat stretch: stop earlier
        when = f" (even after the learning rate changed at epoch {f.epoch_label(decays[0])})"
        actions = [stop, Action({"train.epochs": f"×{max(0.1, (last + 1) / f.n * 1.5):.2g}"},
                                "fewer epochs: the last ones were wasted")]
    else:
        when = " at a constant learning rate"
        actions = [
            Action({"schedule.name": "plateau"}, "decay the learning rate when validation stalls"),
            stop,
            Action({"optimizer.learning_rate": "×0.3"}, "a smaller rate can settle into a better minimum"),
        ]
    return Finding(
        "plateau", "warning", ramp(th["plateau_at"] - at, 0, 0.3),
        f"{name} settled within ±{band:.2g} of its best by epoch {f.epoch_label(last)} "
        f"({100 * at:.0f}% of the run): the last {wasted} epochs brought no real progress{when}",
        {"last_progress_epoch": f.epoch_label(last), "fraction_of_run": at, "wasted_epochs": wasted,
         "noise_band": band, "lr_changes_after": [f.epoch_label(i) for i in decays]},
        actions, epoch=f.epoch_label(last),
    )
