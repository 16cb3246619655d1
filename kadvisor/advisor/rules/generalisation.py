"""Rules comparing training with validation: overfitting, underfitting,
val_better_than_train, noisy_validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Action, Finding, clamp01, ramp, undecided
from kadvisor.advisor.rules.registry import rule

REGULARISE = [
    Action({"optimizer.weight_decay": "×10≥1e-4"}, "weight decay keeps weights small so the model "
           "cannot memorise the training set"),
    Action({"model.dropout": "+0.2≤0.5"}, "dropout before the classifier regularises the head"),
    Action({"data.augment.flip": "horizontal"}, "augmentation shows new variants of each image"),
    Action({"train.early_stopping": "≥5"}, "stop at the best epoch instead of training past it"),
]


@dataclass
class Rise:
    """Validation loss rising after its minimum.

    Attributes:
        best: Index of the minimum of the validation-loss trend.
        rise: Rise of the trend from the minimum to the end, as a fraction of its range.
        rise_level: The same rise as a fraction of the minimum's value.
        train_drop: Fall of the training-loss trend after ``best``, fraction of its level.
    """

    best: int
    rise: float
    rise_level: float
    train_drop: float
    val_min: float
    val_last: float


def validation_rise(f: RunFeatures) -> Rise | None:
    """Measures how far validation loss rose after its minimum (None without curves)."""
    if f.val_loss is None or np.isfinite(f.val_loss).sum() < 4:
        return None
    vt = f.val_loss_trend
    best = int(np.argmin(vt))
    spread = float(np.max(vt) - np.min(vt))
    rise = float(vt[-1] - vt[best])
    train_drop = 0.0
    if f.loss_trend is not None and np.isfinite(f.loss).any():
        lt = f.loss_trend
        train_drop = float((lt[best] - lt[-1]) / max(C.level(f.loss), 1e-12))
    return Rise(
        best, rise / spread if spread > 0 else 0.0, rise / max(abs(float(vt[best])), 1e-12),
        train_drop, float(vt[best]), float(vt[-1]),
    )


def rising_validation(f: RunFeatures, th: dict) -> Rise | None:
    """The overfitting signal shared with `plateau`: val loss rose clearly after its
    minimum for several epochs while training loss kept falling."""
    r = validation_rise(f)
    if r is None:
        return None
    after = f.n - 1 - r.best
    several = max(3, int(0.1 * f.n))
    clear = r.rise >= th["overfit_rise"] and r.rise_level >= th["overfit_rise"] / 2
    return r if clear and after >= several and r.train_drop > th["plateau_tolerance"] else None


def _gap(f: RunFeatures) -> tuple[float, float, int] | None:
    """Train–validation gap of a [0, 1] metric: at the end and at the best val epoch."""
    if not f.bounded or f.val_err is None or np.isfinite(f.val_err).sum() < 4:
        return None
    vt, tt = C.trend(f.val_err), C.trend(f.train_err)
    # First epoch at the best value: on a flat stretch that is where it was reached.
    best = int(np.flatnonzero(vt <= vt.min() + 1e-6 * max(abs(vt.min()), 1e-12))[0])
    return float(vt[-1] - tt[-1]), float(vt[best] - tt[best]), best


@rule("overfitting", cheap=True)
def overfitting(f: RunFeatures, th: dict) -> Finding | None:
    """Validation loss rises after its minimum while training loss falls, or a large and
    growing gap between training and validation metric."""
    if not f.has_validation:
        return undecided("overfitting", "no validation curve")
    if f.n < 4:
        return undecided("overfitting", "fewer than 4 epochs")
    r = rising_validation(f, th)
    if r is not None:
        best = f.epoch_label(r.best)
        return Finding(
            "overfitting", "warning", clamp01(0.5 + ramp(r.rise, th["overfit_rise"], 4 * th["overfit_rise"]) / 2),
            f"val_loss rose {100 * r.rise_level:.0f}% from its minimum {r.val_min:.3g} at epoch {best} "
            f"to {r.val_last:.3g} while training loss kept falling",
            {"best_epoch": best, "val_loss_min": r.val_min, "val_loss_last": r.val_last,
             "rise_of_range": r.rise, "train_drop_after_best": r.train_drop},
            list(REGULARISE), epoch=best,
        )
    gap = _gap(f)
    if gap is not None:
        end, at_best, best = gap
        if end >= th["overfit_gap"] and end - at_best >= th["overfit_gap"] / 2:
            return Finding(
                "overfitting", "warning", 0.5 * ramp(end, th["overfit_gap"], 3 * th["overfit_gap"]) + 0.3,
                f"{f.metric} gap between training and validation grew from {at_best:.2f} at epoch "
                f"{f.epoch_label(best)} to {end:.2f}",
                {"gap_last": end, "gap_at_best": at_best, "best_epoch": f.epoch_label(best)},
                list(REGULARISE), epoch=f.epoch_label(best),
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
    return Finding(
        "val_better_than_train", "warning", ramp(frac, th["val_better_fraction"] - 0.1, 1.0),
        f"validation {name} was better than training on {100 * frac:.0f}% of epochs",
        {"fraction": fractions},
        [
            Action({"model.dropout": "×0.5"}, "heavy dropout/augmentation handicaps training only; "
                   "also check that validation images do not leak from training"),
            Action({"loss.label_smoothing": "×0"}, "label smoothing raises the training loss"),
        ],
    )


@rule("noisy_validation")
def noisy_validation(f: RunFeatures, th: dict) -> Finding | None:
    """Validation jumps up and down from epoch to epoch much more than its trend moves."""
    curves = f.val_curves()
    if not curves or max(np.isfinite(v).sum() for _, v in curves) < 5:
        return undecided("noisy_validation", "fewer than 5 validation values")
    scores = {name: C.relative_zigzag(C.finite(v)) for name, v in curves}
    score = float(np.mean(list(scores.values())))
    if score < th["noise_level"]:
        return None
    return Finding(
        "noisy_validation", "warning", ramp(score, th["noise_level"] * 0.5, th["noise_level"] * 3),
        f"validation zig-zags by {100 * score:.0f}% of its level per epoch on average",
        {"zigzag": scores},
        [
            Action({"data.val_fraction": "≥0.2"}, "a larger validation set gives steadier estimates"),
            Action({"train.batch_size": "×2"}, "larger batches make each epoch's model less random"),
            Action({"optimizer.learning_rate": "×0.5"}, "smaller final steps settle the weights"),
        ],
    )
