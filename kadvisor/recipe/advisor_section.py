"""The ``[advisor]`` recipe section: thresholds of `kadvisor diagnose` and live advice.

Every threshold is a number a practitioner reading the curves would defend; the help
text says what it means. The thresholds of one rule each (noise_level, overfit_rise,
improve_min, plateau_at, underfit_drop, unstable_noise, val_better_fraction, slow_rate)
are the values ``python benchmarks/advisor_agreement.py --fit`` chooses on all labelled
curves (``../shared/curves``, copied to ``tests/data/labelled_curves``; a test keeps the
two in step); its ``--cv`` measures that procedure on curves it did not fit. `kadvisor.advisor` reads them as a plain dict
(`advisor_defaults`), so the advisor works without a recipe too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kadvisor.recipe.fields import between, each, ge, gt, one_of, option


# The finding ids of kadvisor.advisor.rules (a test keeps the two in step); the recipe
# layer sits below the advisor, so it cannot ask the registry itself.
FINDINGS = (
    "diverged", "unstable", "stalled", "slow_convergence", "overfitting", "underfitting",
    "still_improving", "plateau", "noisy_validation", "val_better_than_train",
    "class_imbalance", "unfreeze_backbone", "train_from_scratch_small_data", "low_resolution",
)


@dataclass
class AdvisorSection:
    """Advisor settings: rule thresholds, live advice during fit."""

    live: bool = option(True, "evaluate cheap rules at every epoch end during fit")
    stop_on: list[str] = option(
        [], "findings that stop training when they fire live (e.g. [\"diverged\"])",
        each(one_of(*FINDINGS)),
    )
    min_epochs: int = option(
        8, "runs shorter than this are not judged for plateau, still_improving, "
        "slow_convergence; live advice checks only diverged before this epoch", ge(2),
    )
    diverge_ratio: float = option(
        1.5, "diverged: final training loss is this many times its first value", gt(1),
    )
    diverge_jump: float = option(
        10.0, "diverged: training loss jumps this many times above its best and stays "
        "above a third of that", gt(1),
    )
    unstable_spikes: int = option(
        2, "unstable: at least this many training-loss spikes", ge(1),
    )
    unstable_noise: float = option(
        0.1, "unstable: the training loss and metric zig-zag from epoch to epoch by this "
        "fraction of their plotted range (RMS; see noise_level)", gt(0),
    )
    unstable_rebound: float = option(
        0.33, "unstable: the training loss climbed back by this fraction of what it had "
        "fallen, and stayed (median of the last epochs above its lowest trend)", gt(0),
    )
    spike_rise: float = option(
        0.5, "a spike: training loss rises this fraction of its previous value in one "
        "epoch, then falls back", gt(0),
    )
    spike_metric_drop: float = option(
        0.01, "a spike must also lower a [0, 1] training metric by this much (one point "
        "of accuracy)", gt(0),
    )
    spike_visible: float = option(
        0.05, "without such a metric, a spike must be this fraction of the loss's plotted "
        "range", gt(0),
    )
    stall_drop: float = option(
        0.05, "stalled: training loss fell less than this fraction of its first value",
        between(0, 1),
    )
    underfit_drop: float = option(
        0.25, "underfitting: training loss fell less than this fraction over the run "
        "and validation is close to training", between(0, 1),
    )
    close_gap: float = option(
        0.25, "validation is 'close to' training when the final losses differ by less "
        "than this fraction of the training loss", gt(0),
    )
    overfit_rise: float = option(
        0.05, "overfitting: the last epochs of validation loss sit this fraction above its "
        "minimum (and above its epoch-to-epoch zig-zag) while training loss kept falling",
        gt(0),
    )
    overfit_loss_gap: float = option(
        0.5, "overfitting: the train-validation gap is at least this share of the "
        "validation loss (or [0, 1] error), i.e. training is at most half of it", between(0, 1),
    )
    overfit_gap_growth: float = option(
        0.15, "overfitting: the loss gap grew by this fraction of the validation loss "
        "after validation stopped improving", gt(0),
    )
    overfit_gap: float = option(
        0.1, "overfitting: a train-validation gap of the [0, 1] metric this large, "
        "wider than at the start by half of it", gt(0),
    )
    improve_tail: float = option(
        0.2, "the end of the run: this fraction of the epochs (at least 3), compared "
        "with as many epochs before it", between(0.05, 0.5),
    )
    improve_min: float = option(
        0.02, "still_improving: a validation curve's median over the end beats the epochs "
        "before by this fraction of its plot's height, beyond its zig-zag, best epoch in "
        "the end", gt(0),
    )
    plateau_at: float = option(
        0.4, "plateau: validation (val_loss, else the metric) made its last progress "
        "(reached its best, or settled within one RMS zig-zag of it) before this fraction "
        "of the run", between(0, 1),
    )
    plateau_tolerance: float = option(
        0.02, "a change smaller than this fraction of a curve's level is no progress "
        "(training 'kept falling', validation 'stopped improving')", ge(0),
    )
    noise_level: float = option(
        0.02, "noisy_validation: the RMS epoch-to-epoch zig-zag of validation is this "
        "fraction of its plot's height (2nd-98th percentile of training and validation "
        "together), averaged over the loss and metric plots", gt(0),
    )
    slow_pace: float = option(
        0.6, "slow_convergence: training loss falls over the last quarter at least this "
        "fraction of its pace over the quarter before (not flattening)", between(0, 2),
    )
    slow_rate: float = option(
        0.03, "slow_convergence: training loss falls less than this fraction of itself per "
        "epoch at the end (it would need 20+ epochs to halve)", gt(0),
    )
    linear_r2: float = option(
        0.9, "slow_convergence: training loss is a straight line this well (R^2)",
        between(0, 1),
    )
    val_better_fraction: float = option(
        0.75, "val_better_than_train: validation beats training on this fraction of "
        "epochs", between(0.5, 1),
    )
    imbalance_ratio: float = option(
        3.0, "class_imbalance: largest/smallest training class count", gt(1),
    )
    few_per_class: int = option(
        150, "train_from_scratch_small_data: fewer training images per class than "
        "this", gt(0),
    )
    near_perfect: float = option(
        0.05, "recipe/data rules stay quiet when the run's validation error (its saved model's, else its best epoch's) "
        "is below this fraction of chance-level error", between(0, 1),
    )
    fine_grained_classes: int = option(
        50, "low_resolution: a task with at least this many classes is fine-grained",
        gt(1),
    )
    min_resolution: int = option(
        224, "low_resolution: fine-grained tasks want at least this input size", gt(0),
    )
    bilinear_resolution: int = option(
        448, "low_resolution: bilinear heads want at least this input size", gt(0),
    )


def advisor_defaults() -> dict:
    """Returns every ``[advisor]`` field with its default value, as a plain dict."""
    return dataclasses.asdict(AdvisorSection())


def advisor_help() -> dict[str, str]:
    """Returns field name → one-line help text (used by the docs and reports)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(AdvisorSection)}
