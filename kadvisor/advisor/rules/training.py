"""Rules on the training loss alone: diverged, unstable, stalled, slow_convergence."""

from __future__ import annotations

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.context import RunContext
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Action, Finding, ramp, undecided
from kadvisor.advisor.rules.registry import rule
from kadvisor.advisor.rules.setup import num_classes

LOWER_LR_A_LOT = Action(
    {"optimizer.learning_rate": "×0.1"}, "a loss that explodes means steps are far too large"
)
CLIP = Action({"optimizer.clipnorm": "≥1.0"}, "clipping gradients caps the size of a bad step")


def _finite_loss(f: RunFeatures) -> np.ndarray | None:
    if f.loss is None:
        return None
    x = C.finite(f.loss)
    return x if x.size else None


@rule("diverged", cheap=True)
def diverged(f: RunFeatures, th: dict) -> Finding | None:
    """Loss or val_loss became NaN/inf, or the training loss blew up and stayed up."""
    for name, values in (("loss", f.loss), ("val_loss", f.val_loss)):
        at = f.run.nonfinite.get(name)
        if at is None and values is not None and np.isinf(values).any():
            at = C.first_nonfinite(values)
        if at is not None:
            return Finding(
                "diverged", "error", 0.95,
                f"{name} became NaN/inf at epoch {f.epoch_label(at)}",
                {"column": name, "epoch": f.epoch_label(at)},
                [LOWER_LR_A_LOT, CLIP], epoch=f.epoch_label(at),
            )
    x = _finite_loss(f)
    if x is None or x.size < 3:
        return undecided("diverged", "fewer than 3 finite training-loss values")
    first, last = float(x[0]), float(np.median(x[-3:]))
    if last < 0 and abs(last) >= th["diverge_jump"] * max(abs(first), 1e-12):
        return Finding(
            "diverged", "error", 0.9,
            f"training loss ran away below zero: {first:.3g} → {last:.3g} (a loss that can go "
            "negative is unbounded: the optimiser is exploiting it)",
            {"loss_first": first, "loss_last": last}, [LOWER_LR_A_LOT, CLIP],
        )
    best_before = np.minimum.accumulate(x)
    jumps = x / np.maximum(best_before, 1e-12)
    peak = int(np.argmax(jumps))
    ratio = last / first if first > 0 else float("nan")
    if np.isfinite(ratio) and ratio >= th["diverge_ratio"]:
        return Finding(
            "diverged", "error", ramp(ratio, 1.0, th["diverge_ratio"] * 2),
            f"training loss ended at {last:.3g}, {ratio:.1f}× its first value {first:.3g}",
            {"loss_first": first, "loss_last": last, "ratio": ratio},
            [LOWER_LR_A_LOT, CLIP], epoch=f.epoch_label(peak),
        )
    best = float(best_before[peak])
    # ...and visible: 0.00005 → 0.005 is 100× but invisible beside a first value of 0.3.
    visible = last - best >= th["spike_visible"] * max(abs(first - best), 1e-12)
    if jumps[peak] >= th["diverge_jump"] and last >= best * th["diverge_jump"] / 3 and visible:
        return Finding(
            "diverged", "error", ramp(float(jumps[peak]), 1.0, th["diverge_jump"]),
            f"training loss jumped {jumps[peak]:.0f}× above its best {best:.3g} at epoch "
            f"{f.epoch_label(peak)} and did not recover (last {last:.3g})",
            {"jump": float(jumps[peak]), "loss_best": best, "loss_last": last},
            [LOWER_LR_A_LOT, CLIP], epoch=f.epoch_label(peak),
        )
    return None


def loss_spikes(f: RunFeatures, th: dict) -> list[int]:
    """Epochs where the training loss jumps up and falls back: a rise of ``spike_rise``
    × its previous value that is also *visible* — it costs a [0, 1] training metric at
    least ``spike_metric_drop`` (one point of accuracy by default), or, without such a
    metric, it is at least ``spike_visible`` of the loss's plotted range.

    A training loss is an average over an epoch, so it is smooth; a jump like that
    means some steps undid earlier progress. The bar on visibility keeps out the
    relative jitter of a loss that has reached ~0 (0.002 → 0.01 is +400% but nothing
    a reader of the plot, or the accuracy, would notice). The first two epochs are
    skipped: early wobble is normal while Adam's moment estimates warm up.
    """
    if f.loss is None:
        return []
    x = C.fill_gaps(f.loss)
    err = C.fill_gaps(f.train_err) if f.bounded and f.train_err is not None else None
    span = C.visible_range(x)
    out = []
    for i in range(2, x.size):
        up = x[i] - x[i - 1]
        back = i + 1 >= x.size or x[i + 1] < x[i]
        if up <= th["spike_rise"] * abs(x[i - 1]) or not back:
            continue
        if err is not None:
            visible = err[i] - err[i - 1] >= th["spike_metric_drop"]
        else:
            visible = up >= th["spike_visible"] * span
        if visible:
            out.append(i)
    return out


def training_zigzag(f: RunFeatures) -> float:
    """Mean `curves.noise_ratio` of the training loss and the training metric.

    A training curve is an average over an epoch, so it is smooth while optimisation is
    steady; one that zig-zags by a visible part of its own plot is taking steps that
    undo each other.
    """
    values = [C.noise_ratio(v) for v in (f.loss, f.train_err) if v is not None and np.isfinite(v).sum() >= 5]
    return float(np.mean(values)) if values else 0.0


def loss_rebound(f: RunFeatures) -> tuple[float, int]:
    """(How far the training loss climbed back after its lowest trend, as a fraction of
    what it had fallen from the first epoch; the index of that low).

    Read on the median of the last ``max(3, 10%)`` epochs, so it counts only a climb
    that stayed. 0 when the loss never fell by a tenth of its first value (a loss that
    learned nothing has no progress to give back) or its low is among those last epochs. A
    training loss that gives back much of its progress without blowing up has had
    steps that undo each other, whatever its epoch-to-epoch noise.
    """
    x = C.fill_gaps(f.loss)
    t = C.trend(x)
    k = max(3, int(np.ceil(0.1 * x.size)))
    low = int(np.argmin(t))
    fall = float(x[0] - t[low])
    if not fall > 0.1 * abs(x[0]) or low >= x.size - k:
        return 0.0, low
    with np.errstate(all="ignore"):
        rebound = float(np.median(x[-k:]) - t[low]) / fall
    return (rebound if np.isfinite(rebound) else 0.0), low


@rule("unstable", cheap=True)
def unstable(f: RunFeatures, th: dict) -> Finding | None:
    """The training loss makes repeated large spikes, zig-zags, or climbs back up,
    without diverging."""
    x = _finite_loss(f)
    if x is None or x.size < 5:
        return undecided("unstable", "fewer than 5 finite training-loss values")
    found = loss_spikes(f, th)
    zigzag = training_zigzag(f)
    rebound, low = loss_rebound(f)
    blown = diverged(f, th)
    if blown is not None and blown.is_problem:
        rebound = 0.0  # a loss that climbed back and blew up is `diverged`, not unstable
    if len(found) < th["unstable_spikes"] and zigzag < th["unstable_noise"] and rebound < th["unstable_rebound"]:
        return None
    epochs = [f.epoch_label(i) for i in found]
    mark = epochs[0] if epochs else None  # a zig-zag has no one epoch to mark
    if len(found) >= th["unstable_spikes"]:
        how = f"spiked {len(found)} times (epochs {', '.join(map(str, epochs[:5]))})"
        confidence = ramp(len(found), th["unstable_spikes"] - 1, th["unstable_spikes"] + 2)
    elif rebound >= th["unstable_rebound"]:
        how = (f"climbed back up after epoch {f.epoch_label(low)}, giving back {100 * rebound:.0f}% of "
               "what it had gained")
        confidence = ramp(rebound, th["unstable_rebound"] / 2, 2 * th["unstable_rebound"])
        mark = f.epoch_label(low)
    else:
        how = f"zig-zags by {100 * zigzag:.0f}% of its plotted range from epoch to epoch (RMS)"
        confidence = ramp(zigzag, th["unstable_noise"] / 2, 2 * th["unstable_noise"])
    return Finding(
        "unstable", "warning", confidence, f"training loss {how}",
        {"spikes": epochs, "spike_rise": th["spike_rise"], "zigzag": zigzag, "rebound": rebound},
        [
            Action({"optimizer.learning_rate": "×0.3"}, "spikes mean some steps overshoot"),
            Action({"train.batch_size": "×2"}, "larger batches give less noisy gradients"),
            CLIP,
        ],
        epoch=mark,
    )


def _stuck_accuracy(f: RunFeatures) -> float:
    """The accuracy under which a run whose accuracy never moves has learned nothing:
    chance (1/K) plus 10 points when the run knows its classes, else 0.5."""
    classes = num_classes(f)
    return 1.0 / classes + 0.1 if classes else 0.5


@rule("stalled", cheap=True)
def stalled(f: RunFeatures, th: dict) -> Finding | None:
    """Nothing is learned: the training loss hardly moves from its first value and the
    metric does not move either — or an accuracy stays flat at a guessing level while
    the loss falls (a loss can fall by shrinking weights alone, or by fitting a prior)."""
    x = _finite_loss(f)
    if x is None or x.size < 3:
        return undecided("stalled", "fewer than 3 finite training-loss values")
    t = C.trend(x)
    first = float(x[0])
    if first > 0 and float(np.median(x[-3:])) >= th["diverge_ratio"] * first:
        return None  # it moved, upwards: `diverged`
    drop = (first - float(np.min(t))) / max(abs(first), 1e-12)
    moved, accuracy = 0.0, None
    if f.train_err is not None and f.bounded and np.isfinite(f.train_err).sum() >= 3:
        m = C.trend(C.finite(f.train_err))
        moved = float(np.max(m) - np.min(m))
        if "acc" in (f.metric or ""):
            accuracy = 1.0 - float(m[-1])
    flat_metric = moved < 2 * th["stall_drop"]
    if accuracy is not None and accuracy > _stuck_accuracy(f):
        return None  # flat at a level well above guessing: it learned (converged, or fine-tuning)
    if drop < th["stall_drop"] and flat_metric:
        moved_by = f"fell only {100 * drop:.1f}%" if drop >= 0 else f"rose {100 * -drop:.1f}%"
        how = f"training loss {moved_by} in {x.size} epochs ({first:.3g} → {x[-1]:.3g})"
        confidence = ramp(th["stall_drop"] - drop, 0, th["stall_drop"] / 2)
    elif (accuracy is not None and flat_metric and accuracy <= _stuck_accuracy(f)
          and _cross_entropy_possible(float(t[-1]), accuracy)):
        how = (f"training {f.metric} stayed at {accuracy:.2f} (it moved {moved:.2f} in {x.size} epochs) "
               f"although the loss fell {100 * drop:.0f}%")
        confidence = 0.6
    else:
        return None
    return Finding(
        "stalled", "error", confidence, f"{how}: the model is not learning",
        {"loss_first": first, "loss_min": float(np.min(t)), "drop": drop, "metric_range": moved},
        [Action({"optimizer.learning_rate": "×3"}, "check the data, labels and loss first; then a "
                "larger learning rate may get training off the ground")],
    )


def _cross_entropy_possible(loss: float, accuracy: float) -> bool:
    """Whether ``loss`` can be a cross-entropy of a classifier with this accuracy.

    A wrong prediction gives the true class less than 1/2, so the mean probability of
    the true class is at most a + (1 - a) / 2 and, by Jensen, the cross-entropy at least
    -ln of that. A lower loss (a regression loss logged beside Keras's "accuracy") says
    the accuracy does not measure this model, so it cannot show a stall.
    """
    return loss >= -np.log((1.0 + accuracy) / 2.0)


def _straight_and_slow(x: np.ndarray, th: dict) -> tuple[float, float, float]:
    """(pace ratio, R² of the second half, per-epoch fall at the end as a fraction of
    the loss) of a lower-is-better training curve."""
    pace = C.pace_ratio(x)
    half = x[x.size // 2 :]
    with np.errstate(all="ignore"):
        r = np.corrcoef(np.arange(half.size, dtype=float), half)[0, 1] if np.std(half) > 0 else 0.0
    q = max(2, x.size // 4)
    rate = -C.slope(x[-q:]) / max(abs(float(np.median(x[-q:]))), 1e-12)
    return pace, float(r * r) if np.isfinite(r) else 0.0, rate


def _far_from_flat(x: np.ndarray) -> bool:
    """Whether a curve is far from flat at the end: over its second half it fell by at
    least a tenth of its plotted range (a flattened curve has spent its fall early) and
    by more than it zig-zags there."""
    half = x[x.size // 2 :]
    fall = -C.slope(half) * (half.size - 1)
    return bool(fall > max(C.zigzag_rms(half), 0.1 * C.visible_range(x)))


@rule("slow_convergence")
def slow_convergence(f: RunFeatures, th: dict) -> Finding | None:
    """Training loss falls steadily and slowly, far from flattening, with no overfitting
    gap: the learning rate looks too low.

    A curve shows a low rate by falling in a straight line that does not flatten
    (training loss and metric alike); when the run itself says its rate is low
    (`RunContext.learning_rate_is_low`), a loss still falling slowly at the end is
    enough. Validation is not asked to follow: the rubric reads this off training, and
    a plateau beside it is a finding of its own.
    """
    x = _finite_loss(f)
    if x is None or x.size < th["min_epochs"]:
        return undecided("slow_convergence", f"fewer than {th['min_epochs']} epochs")
    pace, r2, rate = _straight_and_slow(C.fill_gaps(f.loss), th)
    if not 0 < rate <= th["slow_rate"]:
        return None
    blown = diverged(f, th)
    if blown is not None and blown.is_problem:
        return None  # a loss running away is the opposite of steps too small
    ctx = RunContext.from_features(f)
    low_rate = ctx.learning_rate_is_low() and _far_from_flat(C.fill_gaps(f.loss))
    if not low_rate:
        if not (pace >= th["slow_pace"] and r2 >= th["linear_r2"]):
            return None
        if f.bounded and f.train_err is not None:  # the metric must not be flattening either
            metric_pace = C.pace_ratio(C.fill_gaps(f.train_err))
            if not metric_pace >= th["slow_pace"]:
                return None
    if f.val_loss is not None and np.isfinite(f.val_loss).sum() >= 3:
        end = float(f.val_loss_trend[-1])
        if end > 0 and 1 - float(f.loss_trend[-1]) / end >= th["overfit_loss_gap"]:
            return None  # generalisation, not speed, is the limit
    if low_rate:
        rate_words = f"at most {ctx.learning_rate:g} (logged)" if ctx.lr_from_log else f"{ctx.learning_rate:g}"
        how = (f"training loss still falls by {100 * rate:.2g}% per epoch at the end, at a learning "
               f"rate of {rate_words}: the steps are small")
        confidence = 0.7
        # A decade at a time: a logged rate may be fine-tuning a pretrained backbone, where
        # a larger jump is risky (a recipe run gets its range's first choice from causes).
        raise_rate = Action({"optimizer.learning_rate": "×10"}, f"a learning rate of {ctx.learning_rate:g} "
                            "is far below the usual range: each step is too small to get anywhere")
    else:
        how = (f"training loss still falls in a straight line (R²={r2:.2f} over the second half, last "
               f"quarter at {100 * pace:.0f}% of the pace before) by only {100 * rate:.1f}% per epoch: "
               "the learning rate looks too low")
        confidence = 0.5 + 0.5 * ramp(pace, th["slow_pace"], 1.0) * ramp(r2, th["linear_r2"], 1.0)
        raise_rate = Action({"optimizer.learning_rate": "×3"}, "a steady slow fall means small steps")
    return Finding(
        "slow_convergence", "warning", confidence, how,
        {"r2": r2, "pace_ratio": pace, "fall_per_epoch": rate,
         "learning_rate": ctx.learning_rate if low_rate else None},
        [raise_rate, Action({"train.epochs": "×2"}, "or give it more epochs at the same rate")],
    )
