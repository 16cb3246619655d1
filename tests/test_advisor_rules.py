"""Each curve rule on constructed curves: a clear positive, a clear negative, a borderline case."""

import numpy as np
import pytest

from kadvisor.advisor import RULES, diagnose
from kadvisor.advisor.engine import thresholds_for
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.inputs import from_mapping

N = 40
T = np.arange(N, dtype=float)
RNG = np.random.default_rng(0)
ZIG = np.where(T % 2 == 0, 1.0, -1.0)


def decay(start=2.0, end=0.2, rate=0.25, n=N):
    t = np.arange(n, dtype=float)
    return end + (start - end) * np.exp(-rate * t)


def healthy(n=N):
    loss = decay(n=n)
    return {"loss": loss, "val_loss": loss * 1.1 + 0.02, "accuracy": 1 - loss / 2.5,
            "val_accuracy": 1 - (loss * 1.1 + 0.02) / 2.5}


def run_rule(name, curves, **th):
    features = RunFeatures.from_run(from_mapping(curves))
    return RULES[name].fn(features, thresholds_for(None, th))


def found(name, curves, **th):
    result = run_rule(name, curves, **th)
    return result is not None and result.is_problem


def _firing_cases():
    """For every registered rule, curves (and recipe/data facts) on which it fires."""
    from test_advisor_setup_rules import HEAD_ONLY, SCRATCH, curves, data_json

    nan = decay()
    nan[20:] = np.nan
    line = np.linspace(2.0, 1.2, N)
    tiny = np.linspace(0.70, 0.60, N)
    loss = decay()
    return {
        "diverged": ({"loss": nan, "val_loss": nan}, None, None),
        "unstable": (spiky([2.0, 2.0, 2.0]), None, None),
        "stalled": ({"loss": 2.30 + RNG.normal(0, 0.005, N), "accuracy": 0.1 + RNG.normal(0, 0.005, N)}, None, None),
        "slow_convergence": ({"loss": line, "val_loss": line * 1.05}, None, None),
        "overfitting": (overfit(1.0), None, None),
        "underfitting": ({"loss": tiny, "val_loss": tiny + 0.01}, None, None),
        "still_improving": ({"loss": np.linspace(2.0, 0.5, N), "val_loss": np.linspace(2.1, 0.6, N)}, None, None),
        "plateau": ({"loss": decay(), "val_loss": flat_after(10)}, None, None),
        "noisy_validation": ({**healthy(), "val_loss": healthy()["val_loss"] * (1 + 0.3 * ZIG)}, None, None),
        "val_better_than_train": ({"loss": loss, "val_loss": loss * 0.8}, None, None),
        "class_imbalance": (curves(), {"data": {"balance": "none"}}, data_json({"a": 900, "b": 100})),
        "unfreeze_backbone": (curves(stage=["head"] * 30), HEAD_ONLY, None),
        "train_from_scratch_small_data": (curves(0.6), SCRATCH, data_json({"a": 40, "b": 50}, 64)),
        "low_resolution": (curves(0.5), {"data": {"image_size": [128, 128]}, "model": {"head": "gap", "weights": "imagenet"}},
                           data_json({f"c{i}": 30 for i in range(200)})),
    }


def test_every_rule_has_a_case_where_it_fires():
    assert set(_firing_cases()) == set(RULES)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_meets_the_contract_where_it_fires(name):
    from kadvisor.advisor.findings import json_safe
    from kadvisor.recipe.paths import leaf_fields
    from kadvisor.recipe.schema import Recipe

    curves, recipe, data = _firing_cases()[name]
    run = from_mapping(curves)
    run.recipe, run.data = recipe, data
    result = RULES[name].fn(RunFeatures.from_run(run), thresholds_for(recipe))
    assert result is not None and result.is_problem, f"{name} did not fire on its case"
    assert result.rule == name
    assert 0 <= result.confidence <= 1
    assert result.severity in ("error", "warning")
    assert result.summary and "\n" not in result.summary
    assert json_safe(result.evidence) == json_safe(json_safe(result.evidence))  # serialisable
    assert result.actions, f"{name} fired without an action"
    for action in result.actions:
        assert action.patch and action.why
        for path in action.patch:
            assert path in leaf_fields(Recipe) or path == "stages", f"{name} patches unknown path {path}"


def test_healthy_run_has_no_problem():
    assert diagnose(healthy()).labels == ["healthy"]
    noisy_but_fine = {k: v + RNG.normal(0, 0.002, N) for k, v in healthy().items()}
    assert diagnose(noisy_but_fine).labels == ["healthy"]


# diverged ---------------------------------------------------------------------------

def test_diverged_on_nan():
    c = healthy()
    c["loss"] = c["loss"].copy()
    c["loss"][10:] = np.nan
    r = run_rule("diverged", c)
    assert r.is_problem and r.severity == "error" and r.epoch == 10


def test_diverged_on_blow_up_not_on_decay():
    up = np.concatenate([decay(n=10), np.geomspace(0.5, 50, 30)])
    assert found("diverged", {"loss": up})
    assert not found("diverged", {"loss": decay()})


def test_diverged_borderline_ratio():
    loss = np.linspace(1.0, 1.4, N)  # ends 1.4× the start: below the 1.5 default
    assert not found("diverged", {"loss": loss})
    assert found("diverged", {"loss": loss}, diverge_ratio=1.3)


# unstable ---------------------------------------------------------------------------

def spiky(heights, metric_drop=0.03):
    """Healthy curves with loss spikes at epochs 10, 20, 30 that also cost accuracy."""
    c = {k: v.copy() for k, v in healthy().items()}
    for i, h in zip((10, 20, 30), heights):
        c["loss"][i] = c["loss"][i - 1] * (1 + h)
        if h:
            c["accuracy"][i] = c["accuracy"][i - 1] - metric_drop
    return c


def test_unstable_positive_negative_borderline():
    assert found("unstable", spiky([2.0, 2.0, 2.0]))
    assert not found("unstable", healthy())
    assert not found("unstable", spiky([2.0, 0, 0]))  # one spike is not "repeated"
    assert found("unstable", spiky([2.0, 0, 0]), unstable_spikes=1)
    # Relative jumps that cost no accuracy: the jitter of a loss that has reached ~0.
    assert not found("unstable", spiky([2.0, 2.0, 2.0], metric_drop=0.001))


def test_unstable_without_a_metric_needs_visible_spikes():
    loss = decay()
    for i in (10, 20, 30):
        loss[i] = loss[i - 1] * 3  # +0.4 on a plotted range of 1.8: visible
    assert found("unstable", {"loss": loss})
    tiny = decay(start=2.0, end=0.001, rate=0.5)
    for i in (20, 25, 30):
        tiny[i] = tiny[i - 1] * 3  # ×3, but 1e-5 on a range of 2: invisible
    assert not found("unstable", {"loss": tiny})


def test_unstable_reads_a_training_loss_that_zig_zags_without_single_spikes():
    """No one epoch jumps by half its value, but the loss zig-zags by a large part of its
    plotted range every epoch (the branch that used to crash on its missing spike epoch)."""
    zigzag = np.linspace(1.6, 1.0, N) + 0.12 * ZIG
    r = run_rule("unstable", {"loss": zigzag, "val_loss": np.linspace(1.7, 1.1, N)})
    assert r.is_problem and r.evidence["spikes"] == [] and r.epoch is None, r
    assert "zig-zags" in r.summary
    assert not found("unstable", {"loss": np.linspace(1.6, 1.0, N) + 0.005 * ZIG})


def test_unstable_reads_a_training_loss_that_climbs_back_up():
    """Smooth, no spike, no zig-zag: the loss falls to 1.0 by epoch 15, then climbs back to
    1.4 (40 % of its 1.0 fall) and stays there, below where it started (not diverged)."""
    t = T / (N - 1)
    climb = np.where(T < 15, 2.0 - T / 15, 1.0 + 0.4 * np.clip((T - 15) / 10, 0, 1))
    r = run_rule("unstable", {"loss": climb, "val_loss": climb + 0.1})
    assert r.is_problem and "climbed back up" in r.summary and r.epoch == 15, r
    assert 0.35 < r.evidence["rebound"] < 0.45
    assert not found("diverged", {"loss": climb, "val_loss": climb + 0.1})
    small = np.where(T < 15, 2.0 - T / 15, 1.0 + 0.1 * np.clip((T - 15) / 10, 0, 1))
    assert not found("unstable", {"loss": small, "val_loss": small + 0.1})  # gave back 10 %
    assert not found("unstable", {"loss": 2.0 - t, "val_loss": 2.1 - t})  # never climbed
    # Climbed back and blew up past its start: `diverged`, and not also "unstable".
    blew = np.where(T < 15, 2.0 - T / 15, 1.0 + 4.0 * np.clip((T - 15) / 10, 0, 1))
    assert found("diverged", {"loss": blew, "val_loss": blew})
    assert not found("unstable", {"loss": blew, "val_loss": blew})
    # A loss near the float limit overflows the trend: no reading, not a NaN "climb".
    huge = 1e308 * np.linspace(1.0, 0.5, N)
    r = run_rule("unstable", {"loss": huge, "val_loss": huge})
    assert r is None or (r.is_problem and np.isfinite(r.evidence["rebound"])), r


def test_a_loss_that_never_learned_is_not_unstable_for_wobbling_about_its_level():
    """A loss stuck at 14.7 (a 10-class model guessing with a huge logit scale) wobbling
    by 0.05: against its own tiny range that is a 40 % zig-zag, and its first-epoch dip
    "climbs back" — but a reader sees a flat line on an axis that starts at 0."""
    stuck = 14.75 + 0.05 * ZIG - 0.03 * (T == 4)
    flat_val = np.full(N, 14.8)
    assert not found("unstable", {"loss": stuck, "val_loss": flat_val})
    assert found("stalled", {"loss": stuck, "val_loss": flat_val})
    # The same wobble on a loss that learned and then gave a third of it back is unstable.
    climb = np.where(T < 15, 2.0 - T / 15, 1.0 + 0.4 * np.clip((T - 15) / 10, 0, 1))
    assert found("unstable", {"loss": climb + 0.005 * ZIG, "val_loss": climb + 0.1})


# stalled ----------------------------------------------------------------------------

def test_stalled():
    flat = 2.30 + RNG.normal(0, 0.005, N)
    chance = 0.1 + RNG.normal(0, 0.005, N)
    assert found("stalled", {"loss": flat, "accuracy": chance})
    assert not found("stalled", healthy())
    borderline = np.linspace(2.3, 2.3 * 0.94, N)  # 6% drop: just above 5%
    assert not found("stalled", {"loss": borderline})
    assert found("stalled", {"loss": borderline}, stall_drop=0.08)


def test_a_flat_loss_at_a_high_accuracy_is_not_a_stall():
    """A converged run, or a fine-tuning stage that starts good: loss and accuracy hardly
    move, but at 0.95 — it learned; the rubric's stall is a run at a guessing level."""
    flat = 0.20 + RNG.normal(0, 0.002, N)
    assert not found("stalled", {"loss": flat, "accuracy": 0.95 + RNG.normal(0, 0.003, N)})
    assert found("stalled", {"loss": 2.30 + RNG.normal(0, 0.002, N), "accuracy": 0.1 + RNG.normal(0, 0.003, N)})


def test_a_flat_accuracy_is_a_stall_only_beside_a_loss_that_can_be_its_cross_entropy():
    """Accuracy stuck at 0.15 while the loss halves: stalled when the loss is a
    cross-entropy (1.5 -> 0.75 is still above -ln((1 + 0.15) / 2) = 0.55), not when it is
    a regression loss that Keras's "accuracy" is logged beside (0.10 -> 0.05)."""
    falling = np.linspace(1.0, 0.5, N)
    stuck = 0.15 + RNG.normal(0, 0.003, N)
    assert found("stalled", {"loss": 1.5 * falling, "accuracy": stuck})
    assert not found("stalled", {"loss": 0.1 * falling, "accuracy": stuck})


# slow_convergence -------------------------------------------------------------------

def test_slow_convergence():
    line = np.linspace(2.0, 1.2, N)  # 2% per epoch at the end, not flattening
    r = run_rule("slow_convergence", {"loss": line, "val_loss": line * 1.05})
    assert r.is_problem and r.evidence["fall_per_epoch"] < 0.03
    assert not found("slow_convergence", healthy())
    bent = 1.2 + 0.8 * (1 - T / (N - 1)) ** 2  # flattening towards the end
    assert not found("slow_convergence", {"loss": bent, "val_loss": bent})
    fast = np.linspace(4.0, 0.2, N)  # straight but fast: converging, not slow
    assert not found("slow_convergence", {"loss": fast, "val_loss": fast})
    # The rubric reads it off training: validation flat beside it is a plateau as well.
    flat_val = np.concatenate([np.linspace(2.1, 1.5, 10), 1.5 + 0.01 * ZIG[10:]])
    assert found("slow_convergence", {"loss": line, "val_loss": flat_val})
    assert run_rule("slow_convergence", {"loss": line[:5]}).status == "undecided"


def test_slow_convergence_borderline_rate():
    line = np.linspace(2.0, 1.0, N)  # ~2.6% per epoch at the end: between 0.02 and 0.03
    assert not found("slow_convergence", {"loss": line, "val_loss": line}, slow_rate=0.02)
    assert found("slow_convergence", {"loss": line, "val_loss": line}, slow_rate=0.03)


def test_slow_convergence_read_from_a_low_logged_learning_rate():
    # Bending, so the shape alone does not show it; at a logged rate of 1e-6 it does.
    bent = 1.5 + 0.5 * (1 - T / (N - 1)) ** 1.5
    curves = {"loss": bent, "val_loss": bent * 1.05}
    assert not found("slow_convergence", {**curves, "lr": np.full(N, 1e-3)})
    r = run_rule("slow_convergence", {**curves, "lr": np.full(N, 1e-6)})
    assert r.is_problem and r.evidence["learning_rate"] == 1e-6 and "1e-06" in r.summary
    assert r.actions[0].patch == {"optimizer.learning_rate": "×10"}
    flat = np.full(N, 1.5) + 0.001 * ZIG  # a low rate and nothing falling: not slow, stuck
    assert not found("slow_convergence", {"loss": flat, "val_loss": flat, "lr": np.full(N, 1e-6)})


def test_slow_convergence_reads_a_low_rate_at_the_edge_and_from_the_recipe():
    bent = 1.5 + 0.5 * (1 - T / (N - 1)) ** 1.5  # still falling, but not a straight line
    curves = {"loss": bent, "val_loss": bent * 1.05}
    assert found("slow_convergence", {**curves, "lr": np.full(N, 1e-5)})  # the edge counts
    assert not found("slow_convergence", {**curves, "lr": np.full(N, 2e-5)})
    adamw = {"optimizer": {"name": "adamw", "learning_rate": 1e-5}}
    features = RunFeatures.from_run(from_mapping(curves))
    features.run.recipe = adamw  # below AdamW's 1e-4-1e-2: a recipe says it outright
    r = RULES["slow_convergence"].fn(features, thresholds_for(None, {}))
    assert r.is_problem and r.evidence["learning_rate"] == 1e-5 and "(logged)" not in r.summary
    features.run.recipe = {"optimizer": {"name": "adamw", "learning_rate": 1e-3}}
    assert RULES["slow_convergence"].fn(features, thresholds_for(None, {})) is None


def test_slow_convergence_never_beside_a_loss_running_away():
    away = -np.linspace(1e4, 1e6, N)  # a straight line, "falling" without end: diverged
    assert found("diverged", {"loss": away, "val_loss": away})
    assert not found("slow_convergence", {"loss": away, "val_loss": away}, slow_rate=1.0)


# overfitting ------------------------------------------------------------------------

def overfit(rise):
    loss = decay(end=0.05)
    val = decay(end=0.5, rate=0.3)
    val = val + rise * np.clip(T - 10, 0, None) / (N - 10)
    return {"loss": loss, "val_loss": val}


def test_overfitting_on_rising_validation_loss():
    r = run_rule("overfitting", overfit(1.0))
    assert r.is_problem and r.evidence["best_epoch"] < 15
    assert not found("overfitting", healthy())
    assert not found("overfitting", overfit(0.02))  # borderline: a 2% wobble is not a rise
    assert run_rule("overfitting", {"loss": decay()}).status == "undecided"


def test_overfitting_needs_the_rise_to_outlast_a_final_spike():
    c = healthy()
    c["val_loss"] = c["val_loss"].copy()
    c["val_loss"][-1] *= 1.5
    assert not found("overfitting", c)


def test_overfitting_on_a_growing_loss_gap():
    loss = decay(start=1.0, end=0.1, rate=0.05)
    val = np.concatenate([loss[:12] * 1.05, np.full(N - 12, loss[11] * 1.05)])
    r = run_rule("overfitting", {"loss": loss, "val_loss": val + 0.002 * ZIG})
    assert r.is_problem and r.evidence["loss_gap"] > 0.5
    # the same gap while validation is still improving: not (yet) overfitting
    assert not found("overfitting", {"loss": loss * 0.5, "val_loss": loss})


def test_overfitting_on_growing_metric_gap():
    c = healthy()
    c["val_accuracy"] = np.minimum(c["accuracy"], 0.6)
    c["val_loss"] = np.full(N, c["val_loss"][10])
    assert found("overfitting", c)
    small = healthy()
    small["val_accuracy"] = small["accuracy"] - 0.05  # a constant 5-point gap
    assert not found("overfitting", small)


def test_overfitting_when_training_is_memorised_and_validation_is_not():
    """Training accuracy 1.000, validation stuck 8 points lower with its loss still
    easing down (an unregularised CNN on 8 digits per class ends so): a gap under
    overfit_gap, but all of validation's error is one training does not make."""
    accuracy = np.minimum(1.0, 0.1 + T / 10)
    val_accuracy = np.minimum(0.92, 0.1 + T / 12)
    curves = {"loss": decay(end=0.01), "val_loss": decay(end=0.32, rate=0.15),
              "accuracy": accuracy, "val_accuracy": val_accuracy}
    r = run_rule("overfitting", curves)
    assert r is not None and r.is_problem and r.evidence["train_error"] == 0.0
    almost = {**curves, "accuracy": np.minimum(0.98, accuracy)}  # 2 points of training error left
    assert not found("overfitting", almost)
    closer = {**curves, "val_accuracy": np.minimum(0.97, 0.1 + T / 12)}  # 3 points: too small to act on
    assert not found("overfitting", closer)



@pytest.mark.parametrize("dropout, decay, first", [(0.0, 0.0, "model.dropout"), (0.3, 0.0, "optimizer.weight_decay"),
                                                   (0.0, 5e-6, "optimizer.weight_decay"),
                                                   (None, None, "optimizer.weight_decay")])
def test_overfitting_with_no_regulariser_leads_with_dropout(dropout, decay, first):
    """A recipe with neither dropout nor weight decay gets dropout first (weight decay at
    Adam's rates did not act on such a run, see `generalisation.regularise`); a recipe
    that chose one keeps weight decay first, as a bare log does."""
    run = from_mapping(overfit(1.0))
    run.recipe = {} if dropout is None else {"model": {"dropout": dropout}, "optimizer": {"weight_decay": decay}}
    r = RULES["overfitting"].fn(RunFeatures.from_run(run), thresholds_for(None, {}))
    assert r.is_problem and list(r.actions[0].patch) == [first]


# underfitting -----------------------------------------------------------------------

def test_underfitting():
    loss = np.linspace(0.70, 0.60, N)
    assert found("underfitting", {"loss": loss, "val_loss": loss + 0.01})
    assert not found("underfitting", healthy())
    assert not found("underfitting", {"loss": loss, "val_loss": loss * 2})  # not close
    border = np.linspace(0.70, 0.70 * 0.74, N)  # 26% drop: just above the 25% default
    assert not found("underfitting", {"loss": border, "val_loss": border})


# still_improving / plateau ----------------------------------------------------------

def test_still_improving():
    loss = np.linspace(2.0, 0.5, N)
    assert found("still_improving", {"loss": loss, "val_loss": loss + 0.1})
    assert not found("still_improving", healthy())
    assert run_rule("still_improving", {"loss": loss[:5], "val_loss": loss[:5]}).status == "undecided"
    # 0.4% over the run: the plot's height is floored at a tenth of the curve's size, so
    # a fall a reader of the axis would not notice is not "clearly improving".
    tiny = 0.5 - 0.002 * T / N
    assert not found("still_improving", {"loss": tiny, "val_loss": tiny})
    assert found("still_improving", {"loss": tiny, "val_loss": tiny}, improve_min=0.005)


def test_still_improving_must_beat_the_noise_and_end_at_its_best():
    loss = np.linspace(2.0, 0.5, N)
    val = np.linspace(1.0, 0.9, N) + 0.15 * ZIG  # 10% drift under ±15% zig-zags
    assert not found("still_improving", {"loss": loss, "val_loss": val})
    dip = np.linspace(1.0, 0.6, N)
    dip[25] = 0.3  # the best epoch is long before the end
    assert not found("still_improving", {"loss": loss, "val_loss": dip, })
    assert found("still_improving", {"loss": loss, "val_loss": np.linspace(1.0, 0.6, N)})


def flat_after(epoch, noise=0.005):
    return np.concatenate([np.linspace(1.0, 0.4, epoch), np.full(N - epoch, 0.4)]) + noise * ZIG


def test_plateau():
    r = run_rule("plateau", {"loss": decay(), "val_loss": flat_after(10)})
    assert r.is_problem and r.evidence["last_progress_epoch"] <= 12
    assert not found("plateau", healthy())  # smooth and still creeping down: healthy
    assert not found("plateau", overfit(1.0))  # rising validation is overfitting instead
    late = {"loss": decay(), "val_loss": flat_after(28)}  # flat for the last 30% only
    assert not found("plateau", late)
    assert found("plateau", late, plateau_at=0.8)


def test_plateau_read_from_an_early_best_the_smooth_curve_never_beats_again():
    """Validation at its best by epoch 5, then a smooth creep that never gets back
    below it: too smooth to have a noise band it "entered", yet it stopped improving
    at epoch 5 (a labelled real curve, 128.csv, looks like this)."""
    val = np.concatenate([np.linspace(1.0, 0.40, 6), np.linspace(0.46, 0.41, N - 6)])
    r = run_rule("plateau", {"loss": decay(), "val_loss": val})
    assert r is not None and r.is_problem and r.evidence["last_progress_epoch"] == 5


# noisy_validation -------------------------------------------------------------------

def test_noisy_validation():
    c = healthy()
    loud = {**c, "val_loss": c["val_loss"] * (1 + 0.3 * ZIG)}  # 14% of the loss plot, metric clean
    assert found("noisy_validation", loud)
    assert not found("noisy_validation", c)
    # Both panels count: the clean accuracy plot halves the score (0.14 -> 0.07).
    assert not found("noisy_validation", loud, noise_level=0.08)
    mild = {**c, "val_loss": c["val_loss"] * (1 + 0.02 * ZIG)}  # RMS zig-zag 0.4% of the plot
    assert not found("noisy_validation", mild)
    assert found("noisy_validation", mild, noise_level=0.0015)


def test_noise_is_judged_against_the_plot_training_shares():
    # The same wobble on a flat validation curve: invisible while training falls across
    # the whole plot, glaring when training is flat beside it.
    val = 0.40 + 0.01 * ZIG
    falling = {"loss": decay(start=2.0, end=0.1), "val_loss": val}
    flat = {"loss": np.linspace(0.5, 0.38, N), "val_loss": val}  # training moves little
    assert not found("noisy_validation", falling)
    assert found("noisy_validation", flat)


def test_noise_of_a_run_that_learns_nothing_is_folded_into_stalled():
    """The readers label what they see (a stalled run's validation is noisy too), so
    the rule fires; the advice folds it into `stalled` instead of listing a larger
    validation set beside "the model is not learning"."""
    flat = 2.30 + 0.01 * ZIG
    c = {"loss": flat, "val_loss": flat + 0.02 * ZIG, "accuracy": np.full(N, 0.1)}
    assert found("stalled", c) and found("noisy_validation", c)
    d = diagnose(from_mapping(c))
    assert [f.rule for f in d.findings] == ["stalled"]
    assert "noisy_validation" in d.findings[0].evidence["explains"]


# val_better_than_train --------------------------------------------------------------

def test_val_better_than_train():
    loss = decay()
    assert found("val_better_than_train", {"loss": loss, "val_loss": loss * 0.8})
    assert not found("val_better_than_train", healthy())
    half = np.where(T < N * 0.7, loss * 0.9, loss * 1.1)  # better on 70% of epochs
    assert not found("val_better_than_train", {"loss": loss, "val_loss": half})
    assert found("val_better_than_train", {"loss": loss, "val_loss": half}, val_better_fraction=0.65)
    even = np.where(T % 2 == 0, loss * 0.9, loss * 1.1)  # better on half the epochs
    assert not found("val_better_than_train", {"loss": loss, "val_loss": even})


# staged runs ------------------------------------------------------------------------

def test_curves_of_a_staged_run_are_read_on_the_last_stage():
    head = decay(start=2.0, end=0.9, rate=0.5, n=10)
    tune = decay(start=0.8, end=0.2, rate=0.3, n=30)
    c = {"loss": np.concatenate([head, tune]), "val_loss": np.concatenate([head, tune]) * 1.05,
         "stage": ["head"] * 10 + ["finetune"] * 30, "epoch": list(range(10)) + list(range(14, 44))}
    d = diagnose(c)
    assert d.features["judged_stage"] == "finetune" and d.features["judged_epochs"] == [14, 43]
    assert d.labels == ["healthy"]


# the [advisor] section --------------------------------------------------------------

def test_advisor_section_knows_every_rule_and_the_docs_every_threshold():
    import os

    import tomlkit

    from kadvisor.recipe.advisor_section import FINDINGS, advisor_defaults, advisor_help

    assert set(FINDINGS) == set(RULES)
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "reading-the-advice.md")).read()
    for name, value in advisor_defaults().items():
        assert f"| `{name}` | `{tomlkit.item(value).as_string()}` | {advisor_help()[name]} |" in doc, name


def test_val_better_than_train_is_only_a_note_on_a_near_perfect_run():
    """Validation ahead of training is dropout's signature; at ~0 error nothing is worth changing."""
    from kadvisor.advisor import diagnose

    epochs = np.arange(30)
    loss = 0.6 + 1.5 * np.exp(-epochs / 3)
    curves = {"loss": loss, "val_loss": loss - 0.05,
              "accuracy": 1 - 0.5 * np.exp(-epochs / 3), "val_accuracy": 1 - 0.45 * np.exp(-epochs / 3)}
    data = {"num_classes": 10}  # chance is known only with the run's data.json
    assert "val_better_than_train" in diagnose(curves).labels  # a bare log: judged as drawn
    near = diagnose(curves, data=data)
    assert "val_better_than_train" not in near.labels
    assert [n.rule for n in near.notes] == ["val_better_than_train"]
    curves["accuracy"] = 0.7 - 0.5 * np.exp(-epochs / 3)
    curves["val_accuracy"] = 0.75 - 0.45 * np.exp(-epochs / 3)
    assert "val_better_than_train" in diagnose(curves, data=data).labels
    assert "notes" in near.to_dict() and near.to_dict()["notes"][0]["rule"] == "val_better_than_train"
