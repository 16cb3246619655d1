"""Rules comparing training with validation: overfitting, underfitting,
val_better_than_train, noisy_validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Action, Finding, clamp01, ramp, undecided
from kadvisor.advisor.readers.run import get_path
from kadvisor.advisor.rules.registry import rule
from kadvisor.advisor.rules.setup import near_perfect

REGULARISE = [
    Action({"optimizer.weight_decay": "×10≥1e-4"}, "weight decay keeps weights small so the model "
           "cannot memorise the training set"),
    Action({"model.dropout": "+0.2≤0.5"}, "dropout before the classifier regularises the head"),
    Action({"data.augment.flip": "horizontal"}, "augmentation shows new variants of each image"),
    Action({"train.early_stopping": "≥5"}, "stop at the best epoch instead of training past it"),
]


def regularise(f: RunFeatures) -> list[Action]:
    """`REGULARISE`, with dropout first for a recipe with neither dropout nor weight decay.

    Measured on an unregularised small CNN with 8-10 digits per class (AdamW, 2 seeds x
    2 sizes, test accuracy 0.938 as is; `benchmarks/regularisers_small_data.py`): dropout
    0.2 -> 0.949, mild augmentation -> 0.945, label smoothing -> 0.942, weight decay
    1e-4 / 0.01 / 0.05 -> 0.938 / 0.938 / 0.937. Decoupled decay
    shrinks each weight by lr x decay per step, negligible at Adam's rates, so with
    nothing regularising the model, dropout is the cheap change that acts.
    """
    if get_path(f.run.recipe, "model.dropout") == 0 and not get_path(f.run.recipe, "optimizer.weight_decay", 0):
        return [REGULARISE[1], REGULARISE[0], *REGULARISE[2:]]
    return list(REGULARISE)


PERFECT_TRAINING = 0.005  # a training error under half a point: the training set is memorised


@dataclass
class Rise:
    """Validation loss rising after its minimum.

    Attributes:
        best: Index of the minimum of the validation-loss trend.
        rise: How far the last epochs sit above that minimum, as a fraction of it.
        val_min: The minimum of the trend.
        val_last: The median of the last epochs.
        train_drop: Fall of the training-loss trend after ``best``, fraction of its level.
    """

    best: int
    rise: float
    val_min: float
    val_last: float
    train_drop: float


def rising_validation(f: RunFeatures, th: dict) -> Rise | None:
    """The overfitting signal that excludes `plateau`: validation loss rose clearly
    above its minimum and stayed there for several epochs while training loss fell.

    "Clearly" means by ``overfit_rise`` of the minimum's value (scale-free) and by more
    than the curve's own epoch-to-epoch zig-zag; "stayed" means the median of the last
    ``max(3, 10%)`` epochs, so a single spike at the end does not count.
    """
    if f.val_loss is None or np.isfinite(f.val_loss).sum() < 4 or f.loss_trend is None:
        return None
    v = C.fill_gaps(f.val_loss)
    vt = f.val_loss_trend
    best = int(np.argmin(vt))
    k = max(3, int(np.ceil(0.1 * f.n)))
    if f.n - 1 - best < k:
        return None
    low, last = float(vt[best]), float(np.median(v[-k:]))
    rise = (last - low) / max(abs(low), 1e-12)
    lt = f.loss_trend
    train_drop = float(lt[best] - lt[-1]) / max(C.level(f.loss), 1e-12)
    clear = rise >= th["overfit_rise"] and last - low > C.zigzag_rms(v[best:])
    if not clear or train_drop <= th["plateau_tolerance"]:
        return None
    return Rise(best, rise, low, last, train_drop)


def loss_gap(f: RunFeatures, th: dict) -> dict | None:
    """A large train/validation loss gap that grew after validation stopped improving.

    Returns the evidence, or None. The gap is read as ``1 - loss / val_loss`` (the
    share of the validation loss the model does not show on its training data), and
    its growth since validation's last real progress as a fraction of ``val_loss``.
    """
    if f.val_loss is None or f.loss_trend is None or np.isfinite(f.val_loss).sum() < 4:
        return None
    vt, lt = f.val_loss_trend, f.loss_trend
    end = float(vt[-1])
    if not end > 0 or float(lt[-1]) < 0:
        return None
    settled = f.progress_epoch(C.fill_gaps(f.val_loss), th["plateau_tolerance"])
    ratio = 1.0 - float(lt[-1]) / end
    growth = float((vt[-1] - lt[-1]) - (vt[settled] - lt[settled])) / end
    if ratio < th["overfit_loss_gap"] or growth < th["overfit_gap_growth"]:
        return None
    return {"loss_gap": ratio, "gap_growth": growth, "settled_epoch": f.epoch_label(settled)}


def metric_gap(f: RunFeatures, th: dict) -> dict | None:
    """A large and grown gap of a [0, 1] metric: training error at most half the
    validation error and ``overfit_gap`` apart, wider than in the first epochs.

    Half that gap is large enough when training is perfect (error under half a
    point): then every validation error is one the model does not make on what it
    memorised, the plainest overfitting there is (a small unregularised model on a few
    images per class ends so)."""
    if not f.bounded or f.val_err is None or np.isfinite(f.val_err).sum() < 4:
        return None
    vt, tt = C.trend(f.val_err), C.trend(f.train_err)
    # "At the start": the narrowest gap of the first epochs, read raw — a trend's first
    # value already leans towards a training curve that rises in a few epochs.
    first = max(3, f.n // 10)
    early = (f.val_err - f.train_err)[:first]
    early = early[np.isfinite(early)]
    gap = float(vt[-1] - tt[-1])
    start = float(np.min(early)) if early.size else float(vt[0] - tt[0])
    small_train = tt[-1] <= (1 - th["overfit_loss_gap"]) * vt[-1]
    large = th["overfit_gap"] / 2 if tt[-1] <= PERFECT_TRAINING else th["overfit_gap"]
    if gap < large or not small_train or gap - start < th["overfit_gap"] / 2:
        return None
    return {"metric_gap": gap, "metric_gap_start": start,
            "train_error": float(tt[-1]), "val_error": float(vt[-1])}


@rule("overfitting", cheap=True)
def overfitting(f: RunFeatures, th: dict) -> Finding | None:
    """Validation loss rises after its minimum while training loss falls, or a large and
    growing gap between training and validation (loss or [0, 1] metric)."""
    if not f.has_validation:
        return undecided("overfitting", "no validation curve")
    if f.n < 4:
        return undecided("overfitting", "fewer than 4 epochs")
    r = rising_validation(f, th)
    if r is not None:
        best = f.epoch_label(r.best)
        return Finding(
            "overfitting", "warning", clamp01(0.5 + ramp(r.rise, th["overfit_rise"], 4 * th["overfit_rise"]) / 2),
            f"val_loss rose {100 * r.rise:.0f}% from its minimum {r.val_min:.3g} at epoch {best} "
            f"to {r.val_last:.3g} while training loss kept falling",
            {"best_epoch": best, "val_loss_min": r.val_min, "val_loss_last": r.val_last,
             "rise": r.rise, "train_drop_after_best": r.train_drop},
            regularise(f), epoch=best,
        )
    gap = loss_gap(f, th)
    if gap is not None:
        return Finding(
            "overfitting", "warning", 0.4 + 0.5 * ramp(gap["gap_growth"], th["overfit_gap_growth"], 0.5),
            f"training loss is {100 * (1 - gap['loss_gap']):.0f}% of the validation loss and kept falling "
            f"after validation stopped improving at epoch {gap['settled_epoch']}",
            gap, regularise(f), epoch=gap["settled_epoch"],
        )
    gap = metric_gap(f, th)
    if gap is not None:
        return Finding(
            "overfitting", "warning", 0.4 + 0.5 * ramp(gap["metric_gap"], th["overfit_gap"], 3 * th["overfit_gap"]),
            f"{f.metric} is {gap['metric_gap']:.2f} better on training than on validation "
            f"(gap {gap['metric_gap_start']:.2f} at the start)",
            gap, regularise(f),
        )
    return None


@rule("underfitting")
def underfitting(f: RunFeatures, th: dict) -> Finding | None:
    """Training loss hardly falls and validation is about the same as training."""
    if f.loss is None or np.isfinite(f.loss).sum() < 3:
        return undecided("underfitting", "fewer than 3 finite training-loss values")
    if f.val_loss is None or np.isfinite(f.val_loss).sum() < 3:
        return undecided("underfitting", "no validation loss")
    lt, vt = f.loss_trend, f.val_loss_trend
    first = float(C.finite(f.loss)[0])
    drop = (first - float(lt[-1])) / max(abs(first), 1e-12)
    close = abs(vt[-1] - lt[-1]) <= th["close_gap"] * max(abs(lt[-1]), 1e-12)
    if not (th["stall_drop"] <= drop < th["underfit_drop"] and close):
        return None
    return Finding(
        "underfitting", "warning", 0.4 + 0.6 * ramp(th["underfit_drop"] - drop, 0, th["underfit_drop"] / 2),
        f"training loss fell only {100 * drop:.0f}% ({first:.3g} → {lt[-1]:.3g}) and validation "
        f"loss is about the same ({vt[-1]:.3g}): the model does not fit the training set",
        {"loss_drop": drop, "loss_last": float(lt[-1]), "val_loss_last": float(vt[-1])},
        [
            Action({"optimizer.weight_decay": "×0.1"}, "less regularisation lets the model fit"),
            Action({"model.dropout": "×0"}, "dropout limits how well the training set can be fit"),
            Action({"model.width": "×2"}, "a wider model has more capacity"),
            Action({"train.epochs": "×2"}, "or train longer"),
        ],
    )


@rule("val_better_than_train")
def val_better_than_train(f: RunFeatures, th: dict) -> Finding | None:
    """Validation is better than training on most epochs (loss lower or metric better)."""
    if not f.has_validation:
        return undecided("val_better_than_train", "no validation curve")
    fractions = {}
    for name, train, val in (("loss", f.loss, f.val_loss), (f.metric, f.train_err, f.val_err)):
        if train is None or val is None:
            continue
        ok = np.isfinite(train) & np.isfinite(val)
        if ok.sum() >= 3:
            fractions[name] = float(np.mean(val[ok] < train[ok]))
    if not fractions:
        return undecided("val_better_than_train", "fewer than 3 epochs with both curves")
    name, frac = max(fractions.items(), key=lambda kv: kv[1])
    if frac < th["val_better_fraction"]:
        return None
    # Dropout, augmentation and label smoothing handicap training only, so validation
    # ahead of training is their normal signature; it is worth acting on only while
    # the model still leaves error to remove.
    near = near_perfect(f, th) is not None
    return Finding(
        "val_better_than_train", "info" if near else "warning",
        ramp(frac, th["val_better_fraction"] - 0.1, 1.0),
        f"validation {name} was better than training on {100 * frac:.0f}% of epochs"
        + (" (expected with dropout/augmentation; the error left is too small to act on)" if near else ""),
        {"fraction": fractions},
        [
            Action({"model.dropout": "×0.5"}, "heavy dropout/augmentation handicaps training only; "
                   "also check that validation images do not leak from training"),
            Action({"loss.label_smoothing": "×0"}, "label smoothing raises the training loss"),
        ],
    )


def validation_noise(f: RunFeatures) -> dict[str, float]:
    """How much each validation curve zig-zags, as a fraction of the height of the plot
    it shares with its training twin (`RunFeatures.panel_span`).

    Read against the panel, a validation curve that wobbles a little while training
    falls across the whole plot is not noisy; one that jumps by a tenth of the plot
    from epoch to epoch is. (Measured on the 142 labelled curves this separates the
    readers' "noisy" from the rest at ROC-AUC 0.95, against 0.84 for the validation
    curve's own range; subtracting training's zig-zag did not help.)
    """
    out = {}
    for name, v in f.val_curves():
        span = f.panel_span(name)
        if span > 0 and np.isfinite(v).sum() >= 5:
            out[name] = C.zigzag_rms(C.finite(v)) / span
    return out


@rule("noisy_validation")
def noisy_validation(f: RunFeatures, th: dict) -> Finding | None:
    """Validation jumps up and down from epoch to epoch by a large part of what its plot
    shows (`validation_noise`, averaged over the loss and metric panels)."""
    curves = f.val_curves()
    if not curves or max(np.isfinite(v).sum() for _, v in curves) < 5:
        return undecided("noisy_validation", "fewer than 5 validation values")
    scores = validation_noise(f)
    if not scores:
        return None
    score = float(np.mean(list(scores.values())))  # a reader looks at both panels
    if score < th["noise_level"]:
        return None
    name = max(scores, key=scores.get)
    return Finding(
        "noisy_validation", "warning", ramp(score, th["noise_level"] * 0.5, th["noise_level"] * 3),
        f"{name} zig-zags by {100 * scores[name]:.0f}% of its plot's height per epoch (RMS)",
        {"noise_ratio": scores},
        [
            Action({"data.val_fraction": "≥0.2"}, "a larger validation set gives steadier estimates"),
            Action({"train.batch_size": "×2"}, "larger batches make each epoch's model less random"),
            Action({"optimizer.learning_rate": "×0.5"}, "smaller final steps settle the weights"),
        ],
    )
