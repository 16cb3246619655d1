"""Each rule on constructed curves: a clear positive, a clear negative, a borderline case."""

import numpy as np
import pytest

from kadvisor.advisor import RULES, diagnose
from kadvisor.advisor.engine import thresholds_for
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.inputs import from_mapping

N = 40
T = np.arange(N, dtype=float)
RNG = np.random.default_rng(0)


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


def test_every_rule_meets_the_contract_on_a_healthy_run():
    for name, rule in RULES.items():
        result = rule.fn(RunFeatures.from_run(from_mapping(healthy())), thresholds_for(None))
        if result is not None:
            assert result.rule == name
            assert 0 <= result.confidence <= 1
            assert result.severity in ("error", "warning", "info")
            assert result.summary and "\n" not in result.summary


def test_healthy_run_has_no_problem():
    assert diagnose(healthy()).labels == ["healthy"]


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

def spiky(heights):
    loss = decay()
    for i, h in zip((10, 20, 30), heights):
        loss[i] = loss[i - 1] * (1 + h)
    return loss


def test_unstable_positive_negative_borderline():
    assert found("unstable", {"loss": spiky([2.0, 2.0, 2.0])})
    assert not found("unstable", {"loss": decay() + RNG.normal(0, 0.002, N)})
    assert not found("unstable", {"loss": spiky([2.0, 0, 0])})  # one spike is not "repeated"
    assert found("unstable", {"loss": spiky([2.0, 0, 0])}, unstable_spikes=1)


# stalled ----------------------------------------------------------------------------

def test_stalled():
    flat = 2.30 + RNG.normal(0, 0.005, N)
    chance = 0.1 + RNG.normal(0, 0.005, N)
    assert found("stalled", {"loss": flat, "accuracy": chance})
    assert not found("stalled", healthy())
    borderline = np.linspace(2.3, 2.3 * 0.94, N)  # 6% drop: just above 5%
    assert not found("stalled", {"loss": borderline})
    assert found("stalled", {"loss": borderline}, stall_drop=0.08)


# slow_convergence -------------------------------------------------------------------

def test_slow_convergence():
    line = np.linspace(2.0, 1.2, N)
    assert found("slow_convergence", {"loss": line, "val_loss": line * 1.05})
    assert not found("slow_convergence", healthy())
    bent = 1.2 + 0.8 * (1 - T / (N - 1)) ** 2  # flattening towards the end
    assert not found("slow_convergence", {"loss": bent, "val_loss": bent})
    assert run_rule("slow_convergence", {"loss": line[:5]}).status == "undecided"


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


def test_overfitting_on_growing_metric_gap():
    c = healthy()
    c["val_accuracy"] = np.minimum(c["accuracy"], 0.6)
    c["val_loss"] = np.full(N, c["val_loss"][10])
    assert found("overfitting", c)


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
    tiny = 0.5 - 0.005 * T / N  # 1% over the run: below 3% of the level
    assert not found("still_improving", {"loss": tiny, "val_loss": tiny})


def test_plateau():
    val = np.concatenate([np.linspace(1.0, 0.4, 10), np.full(N - 10, 0.4)])
    c = {"loss": decay(), "val_loss": val + RNG.normal(0, 0.001, N)}
    r = run_rule("plateau", c)
    assert r.is_problem and r.evidence["last_progress_epoch"] <= 12
    assert not found("plateau", healthy())
    assert not found("plateau", overfit(1.0))  # rising validation is overfitting instead
    late = np.concatenate([np.linspace(1.0, 0.4, 28), np.full(N - 28, 0.4)])  # 70% of the run
    assert not found("plateau", {"loss": decay(), "val_loss": late})
    assert found("plateau", {"loss": decay(), "val_loss": late}, plateau_at=0.8)


# noisy_validation -------------------------------------------------------------------

def test_noisy_validation():
    c = healthy()
    zig = np.where(T % 2 == 0, 1.0, -1.0)
    assert found("noisy_validation", {**c, "val_loss": c["val_loss"] * (1 + 0.3 * zig)})
    assert not found("noisy_validation", c)
    mild = {**c, "val_loss": c["val_loss"] * (1 + 0.01 * zig), "val_accuracy": c["val_accuracy"]}
    assert not found("noisy_validation", mild)
    assert found("noisy_validation", mild, noise_level=0.002)


# val_better_than_train --------------------------------------------------------------

def test_val_better_than_train():
    loss = decay()
    assert found("val_better_than_train", {"loss": loss, "val_loss": loss * 0.8})
    assert not found("val_better_than_train", healthy())
    half = np.where(T < N * 0.7, loss * 0.9, loss * 1.1)  # better on 70% of epochs
    assert not found("val_better_than_train", {"loss": loss, "val_loss": half})
    assert found("val_better_than_train", {"loss": loss, "val_loss": half}, val_better_fraction=0.65)


# recipe / data rules ----------------------------------------------------------------

def data_json(counts, size=32):
    return {"num_classes": len(counts), "splits": {"train": {"counts": counts}}, "image_shape": [size, size, 3]}


def test_class_imbalance():
    recipe = {"data": {"balance": "none"}}
    d = diagnose(healthy(), recipe=recipe, data=data_json({"a": 900, "b": 100}))
    assert "class_imbalance" in d.labels
    top = next(f for f in d.findings if f.rule == "class_imbalance").actions[0]
    assert top.patch == {"data.balance": "class_weight"} and top.change["data.balance"] == ["none", "class_weight"]
    assert "class_imbalance" not in diagnose(healthy(), recipe=recipe, data=data_json({"a": 500, "b": 400})).labels
    balanced = {"data": {"balance": "class_weight"}}
    assert "class_imbalance" not in diagnose(healthy(), recipe=balanced, data=data_json({"a": 900, "b": 100})).labels


def test_unfreeze_backbone():
    head_only = {"optimizer": {"learning_rate": 1e-3}, "stages": [{"name": "head", "trainable": "head"}]}
    d = diagnose(healthy(), recipe=head_only)
    f = next(f for f in d.findings if f.rule == "unfreeze_backbone")
    stages = f.actions[0].patch["stages"]
    assert stages[-1]["trainable"] == "all" and stages[-1]["optimizer"]["learning_rate"] == pytest.approx(1e-4)
    both = {"stages": [{"name": "head", "trainable": "head"}, {"name": "ft", "trainable": "all"}]}
    assert "unfreeze_backbone" not in diagnose(healthy(), recipe=both).labels
    # history-only: a head stage whose validation flattened
    c = healthy()
    c["val_loss"] = np.concatenate([np.linspace(1, 0.4, 8), np.full(N - 8, 0.4)])
    c["stage"] = ["head"] * N
    assert "unfreeze_backbone" in diagnose(c).labels


def test_train_from_scratch_small_data():
    recipe = {"model": {"weights": "none", "backbone": "small_cnn"}}
    d = diagnose(healthy(), recipe=recipe, data=data_json({"a": 40, "b": 50}))
    f = next(f for f in d.findings if f.rule == "train_from_scratch_small_data")
    assert f.actions[0].patch["model.weights"] == "imagenet"
    assert "train_from_scratch_small_data" not in diagnose(healthy(), recipe=recipe, data=data_json({"a": 4000, "b": 5000})).labels
    pretrained = {"model": {"weights": "imagenet"}}
    assert "train_from_scratch_small_data" not in diagnose(healthy(), recipe=pretrained, data=data_json({"a": 40})).labels


def test_low_resolution():
    many = {f"c{i}": 30 for i in range(200)}
    recipe = {"data": {"image_size": [128, 128]}, "model": {"head": "gap", "weights": "imagenet"}}
    d = diagnose(healthy(), recipe=recipe, data=data_json(many, 128))
    f = next(f for f in d.findings if f.rule == "low_resolution")
    assert f.actions[0].patch == {"data.image_size": [224, 224]}
    few = {f"c{i}": 30 for i in range(10)}
    assert "low_resolution" not in diagnose(healthy(), recipe=recipe, data=data_json(few, 128)).labels
    bilinear = {"data": {"image_size": [224, 224]}, "model": {"head": "bilinear", "weights": "imagenet"}}
    f = next(f for f in diagnose(healthy(), recipe=bilinear, data=data_json(few, 224)).findings if f.rule == "low_resolution")
    assert f.actions[0].patch == {"data.image_size": [448, 448]}
