"""Rules on the training loss alone: diverged, unstable, stalled, slow_convergence."""

from __future__ import annotations

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Action, Finding, ramp, undecided
from kadvisor.advisor.rules.registry import rule

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
    if jumps[peak] >= th["diverge_jump"] and last >= best * th["diverge_jump"] / 3:
        return Finding(
            "diverged", "error", ramp(float(jumps[peak]), 1.0, th["diverge_jump"]),
            f"training loss jumped {jumps[peak]:.0f}× above its best {best:.3g} at epoch "
            f"{f.epoch_label(peak)} and did not recover (last {last:.3g})",
            {"jump": float(jumps[peak]), "loss_best": best, "loss_last": last},
            [LOWER_LR_A_LOT, CLIP], epoch=f.epoch_label(peak),
        )
    return None


def loss_spikes(x: np.ndarray, rise: float) -> list[int]:
    """Epochs where the loss jumps up by ``rise`` × its previous value and by a tenth of
    its trend range (visible on the plot), then falls back.

    The first two epochs are skipped: early wobble is normal while Adam's moment
    estimates warm up.
    """
    t = C.trend(x)
    spread = float(np.max(t) - np.min(t)) if t.size else 0.0
    if spread <= 0:
        return []
    out = []
    for i in range(2, x.size):
        up = x[i] - x[i - 1]
        back = i + 1 >= x.size or x[i + 1] < x[i]
        if up > rise * abs(x[i - 1]) and up > 0.1 * spread and back:
            out.append(i)
    return out


@rule("unstable", cheap=True)
def unstable(f: RunFeatures, th: dict) -> Finding | None:
    """The training loss makes repeated large spikes without diverging."""
    x = _finite_loss(f)
    if x is None or x.size < 5:
        return undecided("unstable", "fewer than 5 finite training-loss values")
    found = loss_spikes(x, th["spike_rise"])
    if len(found) < th["unstable_spikes"]:
        return None
    epochs = [f.epoch_label(i) for i in found]
    return Finding(
        "unstable", "warning", ramp(len(found), th["unstable_spikes"] - 1, th["unstable_spikes"] + 2),
        f"training loss spiked {len(found)} times (epochs {', '.join(map(str, epochs[:5]))})",
        {"spikes": epochs, "spike_rise": th["spike_rise"]},
        [
            Action({"optimizer.learning_rate": "×0.3"}, "spikes mean some steps overshoot"),
            Action({"train.batch_size": "×2"}, "larger batches give less noisy gradients"),
            CLIP,
        ],
        epoch=epochs[0],
    )


@rule("stalled")
def stalled(f: RunFeatures, th: dict) -> Finding | None:
    """Training loss (and metric) essentially do not move: nothing is learned."""
    x = _finite_loss(f)
    if x is None or x.size < 3:
        return undecided("stalled", "fewer than 3 finite training-loss values")
    t = C.trend(x)
    first = float(x[0])
    drop = (first - float(np.min(t))) / max(abs(first), 1e-12)
    if drop >= th["stall_drop"]:
        return None
    moved = 0.0
    if f.train_err is not None and f.bounded and np.isfinite(f.train_err).sum() >= 3:
        m = C.trend(C.finite(f.train_err))
        moved = float(np.max(m) - np.min(m))
        if moved >= 2 * th["stall_drop"]:
            return None  # the metric moves although the loss hardly does
    return Finding(
        "stalled", "error", ramp(th["stall_drop"] - drop, 0, th["stall_drop"] / 2),
        f"training loss fell only {100 * drop:.1f}% in {x.size} epochs ({first:.3g} → {x[-1]:.3g}): "
        "the model is not learning",
        {"loss_first": first, "loss_min": float(np.min(t)), "drop": drop, "metric_range": moved},
        [Action({"optimizer.learning_rate": "×3"}, "check the data, labels and loss first; then a "
                "larger learning rate may get training off the ground")],
    )


@rule("slow_convergence")
def slow_convergence(f: RunFeatures, th: dict) -> Finding | None:
    """Training loss falls steadily and almost linearly, far from flattening."""
    x = _finite_loss(f)
    if x is None or x.size < th["min_epochs"]:
        return undecided("slow_convergence", f"fewer than {th['min_epochs']} epochs")
    t = C.trend(x)
    drop = (t[0] - t[-1]) / max(abs(t[0]), 1e-12)
    if drop < th["stall_drop"]:
        return None
    epochs = np.arange(t.size, dtype=float)
    with np.errstate(all="ignore"):
        r = np.corrcoef(epochs, t)[0, 1]
    r2 = float(r * r) if np.isfinite(r) else 0.0
    overall = (t[-1] - t[0]) / (t.size - 1)
    late = C.slope(C.tail(t, 0.25))
    keeps_pace = late / overall if overall < 0 else 0.0
    gap_ok = True
    if f.val_loss is not None and np.isfinite(f.val_loss).sum() >= 3:
        vt = C.trend(f.val_loss)
        gap_ok = abs(vt[-1] - t[-1]) <= th["close_gap"] * max(abs(t[-1]), 1e-12)
    if r2 < th["linear_r2"] or keeps_pace < 0.5 or not gap_ok:
        return None
    return Finding(
        "slow_convergence", "warning", ramp(keeps_pace, 0.5, 1.0) * ramp(r2, th["linear_r2"], 1.0) ** 0.5,
        f"training loss fell almost linearly (R²={r2:.2f}) and was still falling at "
        f"{100 * keeps_pace:.0f}% of its average rate at the end: the learning rate looks too low",
        {"r2": r2, "late_vs_average_slope": keeps_pace, "loss_drop": float(drop)},
        [
            Action({"optimizer.learning_rate": "×3"}, "a steady linear fall means small steps"),
            Action({"train.epochs": "×2"}, "or give it more epochs at the same rate"),
        ],
    )
