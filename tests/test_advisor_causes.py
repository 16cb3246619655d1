"""Cause analysis: what the run directory knows (recipe, classes, data sizes) turns a
symptom into a cause, ranks the finding showing it first with the action that removes
it, and folds the symptoms it explains. Each cause has a negative control: the same
curves without the fact that makes it the cause get no such advice."""

import math

import numpy as np
import pytest

from kadvisor.advisor import diagnose
from kadvisor.advisor.context import RunContext
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.inputs import from_mapping

N = 30
T = np.arange(N, dtype=float)
ZIG = np.where(T % 2 == 0, 1.0, -1.0)
RNG = np.random.default_rng(1)


def digits_data(train=1150, classes=10):
    return {"num_classes": classes,
            "splits": {"train": {"size": train, "counts": {str(i): train // classes for i in range(classes)}}}}


def recipe(**paths):
    """A digits-like recipe with some dotted paths changed."""
    out = {"optimizer": {"name": "adamw", "learning_rate": 3e-3, "weight_decay": 1e-4},
           "train": {"epochs": N, "batch_size": 32, "early_stopping": 0},
           "model": {"backbone": "small_cnn", "width": 16, "dropout": 0.2}, "data": {"balance": "none"},
           "loss": {"label_smoothing": 0.0}}
    for path, value in paths.items():
        section, key = path.split(".")
        out[section][key] = value
    return out


def at_chance(n=N):
    """A 10-class model that learns nothing: loss at ln 10, accuracy 0.1, validation jumping."""
    return {"loss": math.log(10) + RNG.normal(0, 0.003, n), "accuracy": 0.1 + RNG.normal(0, 0.003, n),
            "val_loss": math.log(10) + 0.05 * ZIG[:n], "val_accuracy": 0.1 + 0.03 * ZIG[:n]}


def crawling(n=N):
    """Loss falling slowly and steadily, validation following: far from converged."""
    loss = np.linspace(2.3, 1.6, n)
    return {"loss": loss, "val_loss": loss - 0.02, "accuracy": np.linspace(0.15, 0.45, n),
            "val_accuracy": np.linspace(0.16, 0.47, n)}


def first(d):
    return d.findings[0], d.findings[0].actions[0]


def test_learning_rate_far_too_high_is_the_cause_of_a_run_at_chance():
    d = diagnose(at_chance(), recipe=recipe(**{"optimizer.learning_rate": 5.0}), data=digits_data())
    finding, action = first(d)
    assert finding.rule == "stalled" and finding.severity == "error"
    old, new = action.change["optimizer.learning_rate"]
    assert old / new >= 100  # lowered by at least 100x, into AdamW's usual range
    assert 1e-4 <= new <= 1e-2
    assert "noisy_validation" not in d.labels  # a symptom of the cause, folded in
    assert "learning_rate" in finding.evidence


def test_without_the_recipe_the_same_curves_get_no_learning_rate_cut():
    d = diagnose(at_chance())
    assert d.findings[0].rule == "stalled"
    # No recipe, so no rate to judge: only the rule's relative suggestion, no absolute rate.
    assert not any(isinstance(a.patch.get("optimizer.learning_rate"), float) for a in d.findings[0].actions)


def test_a_bare_log_with_a_logged_learning_rate_far_too_high_gets_it_lowered():
    # A TensorBoard or CSV log with its learning-rate column: 5.0 is above every
    # optimizer's usual range, so the cause is evident without the recipe.
    d = diagnose({**at_chance(), "lr": np.full(N, 5.0)})
    finding, action = first(d)
    assert finding.rule == "stalled" and finding.evidence["learning_rate"]["from_log"]
    assert 5.0 / action.patch["optimizer.learning_rate"] >= 100


def test_a_bare_log_converging_at_a_low_logged_rate_is_not_called_too_slow():
    # 1e-5 is below Adam's usual range, but usual when fine-tuning: a log does not say
    # which, so a loss that converges at it gets no rate advice.
    converging = 0.3 + 2.0 * np.exp(-T / 4)
    d = diagnose({"loss": converging, "val_loss": converging + 0.05, "lr": np.full(N, 1e-5)})
    assert "slow_convergence" not in d.labels
    assert not any("optimizer.learning_rate" in a.patch for f in d.findings for a in f.actions)
    assert ctx_of({**crawling(), "lr": np.full(N, 1e-5)}).learning_rate_verdict() is None
    assert ctx_of({**crawling(), "lr": np.full(N, 3e-3)}).learning_rate_verdict() is None


def test_a_bare_log_crawling_at_a_tiny_logged_rate_raises_it_first():
    # Crawling at 1e-6 (a tenth of every usual range and more): the rate is the cause, and
    # "still improving" is what it looks like, not a competing "train longer".
    d = diagnose({**crawling(), "lr": np.full(N, 1e-6)})
    finding, action = first(d)
    assert finding.rule == "slow_convergence" and action.patch == {"optimizer.learning_rate": "×10"}
    assert "still_improving" in finding.evidence["explains"]
    assert [f.rule for f in d.findings] == ["slow_convergence"]
    # The same curves at a usual logged rate: nothing to raise, train longer.
    d = diagnose({**crawling(), "lr": np.full(N, 1e-3)})
    assert d.findings[0].rule == "still_improving"


def ctx_of(history):
    return RunContext.from_features(RunFeatures.from_run(from_mapping(history)))


def test_sgd_rate_far_too_high_is_lowered_into_sgd_range():
    d = diagnose(at_chance(), recipe=recipe(**{"optimizer.name": "sgd", "optimizer.learning_rate": 50.0}),
                 data=digits_data())
    _, action = first(d)
    assert 1e-3 <= action.change["optimizer.learning_rate"][1] <= 1.0


def test_learning_rate_far_too_low_is_raised_first():
    d = diagnose(crawling(), recipe=recipe(**{"optimizer.learning_rate": 1e-5}), data=digits_data())
    _, action = first(d)
    old, new = action.change["optimizer.learning_rate"]
    assert new >= 30 * old
    assert len(d.findings) == 1  # still_improving/underfitting/slow_convergence folded into one


def test_a_usual_learning_rate_is_left_alone():
    d = diagnose(crawling(), recipe=recipe(), data=digits_data())
    assert all("optimizer.learning_rate" not in a.patch for a in d.findings[0].actions[:1])


def test_crushing_weight_decay_is_named():
    d = diagnose(at_chance(), recipe=recipe(**{"optimizer.weight_decay": 30.0}), data=digits_data())
    _, action = first(d)
    assert action.change["optimizer.weight_decay"] == [30.0, 1e-4]
    mild = diagnose(at_chance(), recipe=recipe(**{"optimizer.weight_decay": 1e-3}), data=digits_data())
    assert "optimizer.weight_decay" not in first(mild)[1].patch


def test_three_epochs_are_too_few_even_below_min_epochs():
    short = {k: v[:3] for k, v in crawling().items()}
    short["loss"] = np.array([2.3, 1.6, 1.1])
    d = diagnose(short, recipe=recipe(**{"train.epochs": 3}), data=digits_data())
    finding, action = first(d)
    assert finding.rule == "still_improving" and action.change["train.epochs"][1] >= 12
    # A bare 3-epoch log stays unjudged for still_improving, as the rubric says.
    assert "still_improving" not in diagnose(short).labels


def test_eager_early_stopping_is_the_cause_of_a_short_run():
    c = {k: v[:6] for k, v in crawling().items()}
    c["loss"] = np.array([2.3, 1.8, 1.4, 1.1, 0.9, 0.75])
    d = diagnose(c, recipe=recipe(**{"train.early_stopping": 1}), data=digits_data())
    _, action = first(d)
    assert action.patch == {"train.early_stopping": 10}
    patient = diagnose(c, recipe=recipe(**{"train.early_stopping": 10}), data=digits_data())
    assert not patient.findings or first(patient)[1].patch != {"train.early_stopping": 10}


def test_a_batch_as_large_as_the_training_set_gives_too_few_updates():
    d = diagnose(crawling(), recipe=recipe(**{"train.batch_size": 1024}), data=digits_data())
    _, action = first(d)
    assert action.change["train.batch_size"] == [1024, 32]
    assert "2 optimizer update(s) per epoch" in action.why


def test_a_model_one_filter_wide_gets_a_wider_one():
    d = diagnose(crawling(), recipe=recipe(**{"model.width": 1}), data=digits_data())
    assert first(d)[1].change["model.width"] == [1, 16]


def test_heavy_dropout_is_lowered_when_validation_beats_training():
    loss = np.linspace(1.5, 0.9, N) ** 1
    c = {"loss": loss, "val_loss": loss * 0.5, "accuracy": 1 - loss / 2, "val_accuracy": 1 - loss / 4}
    d = diagnose(c, recipe=recipe(**{"model.dropout": 0.95}), data=digits_data())
    assert first(d)[1].change["model.dropout"] == [0.95, 0.2]


def test_skewed_classes_come_before_curve_symptoms():
    data = {"num_classes": 2, "splits": {"train": {"size": 1000, "counts": {"a": 950, "b": 50}}}}
    d = diagnose(crawling(), recipe=recipe(), data=data)
    assert d.findings[0].rule == "class_imbalance"


@pytest.mark.parametrize("classes", [2, 10, 100])
def test_chance_level_of_a_bare_log_is_inferred_only_when_evident(classes):
    stuck = {"loss": np.full(N, math.log(classes)), "accuracy": np.full(N, 1 / classes)}
    assert RunContext.from_features(RunFeatures.from_run(from_mapping(stuck))).classes == classes
    learning = {"loss": np.linspace(math.log(classes), 0.3, N), "accuracy": np.linspace(1 / classes, 0.9, N)}
    assert RunContext.from_features(RunFeatures.from_run(from_mapping(learning))).classes is None


def test_learning_rate_verdict_uses_each_optimizers_range():
    ctx = RunContext(optimizer="adamw", learning_rate=5.0)
    assert ctx.learning_rate_verdict() == ("high", pytest.approx(500))
    assert RunContext(optimizer="sgd", learning_rate=0.1).learning_rate_verdict() is None
    assert RunContext(optimizer="adam", learning_rate=1e-6).learning_rate_verdict() == ("low", pytest.approx(100))
    assert RunContext(optimizer="adam", learning_rate=3e-4).learning_rate_verdict() is None


def unfinished(n=12):
    """A regularised run cut off mid-training: validation ahead of training on every
    epoch and still falling clearly at the end (Adam at 1e-4 for 10 epochs looks so)."""
    loss = 2.3 * np.exp(-T[:n] / 8) + 0.6
    return {"loss": loss, "val_loss": loss - 0.25, "accuracy": 1 - loss / 3.2,
            "val_accuracy": 1 - (loss - 0.25) / 3.2}


def test_an_unfinished_run_trains_longer_first_and_folds_validation_ahead_of_training():
    d = diagnose(unfinished(), recipe=recipe(**{"train.epochs": 12, "model.dropout": 0.2}), data=digits_data())
    assert {"still_improving", "val_better_than_train"} <= set(d.labels) or "val_better_than_train" in (
        d.findings[0].evidence.get("explains") or [])
    finding, action = first(d)
    assert finding.rule == "still_improving" and "train.epochs" in action.patch
    assert finding.evidence["explains"] == ["val_better_than_train"]
    assert [f.rule for f in d.findings] == ["still_improving"]  # not separate competing advice


def test_heavy_dropout_behind_an_unfinished_run_is_still_named_first():
    """The control: with dropout 0.6 the regulariser, not the budget, is the cause."""
    d = diagnose(unfinished(), recipe=recipe(**{"train.epochs": 12, "model.dropout": 0.6}), data=digits_data())
    finding, action = first(d)
    assert "model.dropout" in action.patch, (finding.rule, action.patch)


def healthy_but_noisy(n=N):
    """Training converges; validation accuracy is high but jumps epoch to epoch."""
    loss = 2.0 * np.exp(-T[:n] / 4) + 0.02
    return {"loss": loss, "accuracy": 1.0 - 0.9 * np.exp(-T[:n] / 4),
            "val_loss": loss + 0.1 + 0.06 * ZIG[:n], "val_accuracy": 0.96 - 0.9 * np.exp(-T[:n] / 4) + 0.03 * ZIG[:n]}


def with_validation(data, images=180):
    return {**data, "splits": {**data["splits"], "validation": {"size": images}}}


def test_noisy_validation_alone_at_a_usual_rate_is_a_note_not_a_change():
    # A healthy model read unsteadily by a small validation set: every remedy changes
    # what is trained, so the advice is to change nothing.
    d = diagnose(healthy_but_noisy(), recipe=recipe(), data=with_validation(digits_data()))
    assert d.healthy and not d.findings, d.labels
    note = next(x for x in d.notes if x.rule == "noisy_validation")
    assert note.severity == "info" and not note.actions
    assert "180 validation images" in note.summary and note.evidence["validation_images"] == 180


def test_noisy_validation_at_a_rate_far_too_high_still_lowers_it():
    d = diagnose(healthy_but_noisy(), recipe=recipe(**{"optimizer.learning_rate": 0.5}),
                 data=with_validation(digits_data()))
    finding, action = first(d)
    assert finding.rule == "noisy_validation" and action.patch["optimizer.learning_rate"] <= 0.5 / 100


def test_noisy_validation_of_a_bare_log_keeps_its_actions():
    # Without the recipe the rate may be what makes validation jump: the advice stays.
    d = diagnose(healthy_but_noisy())
    finding, action = first(d)
    assert finding.rule == "noisy_validation" and action.patch


def test_noisy_validation_beside_another_problem_is_not_demoted():
    history = healthy_but_noisy()
    history["val_loss"] = history["val_loss"] + np.linspace(0, 1.5, N) * (T > 10)  # rising: overfitting
    d = diagnose(history, recipe=recipe(), data=with_validation(digits_data()))
    assert "overfitting" in d.labels and "noisy_validation" in d.labels, d.labels


def hardly_fitting(n=N):
    """Training loss falls 16 % and levels off high, validation the same: underfitting."""
    loss = 2.07 + 0.4 * np.exp(-T[:n] / 5)
    return {"loss": loss, "val_loss": loss + 0.02, "accuracy": 0.3 - 0.2 * np.exp(-T[:n] / 5),
            "val_accuracy": 0.29 - 0.2 * np.exp(-T[:n] / 5)}


def with_augment(base, **factors):
    return {**base, "data": {**base["data"], "augment": dict(factors)}}


def test_augmentation_far_beyond_the_usual_is_toned_down_first():
    aug = with_augment(recipe(), rotation=0.5, translate=0.4, zoom=0.1)
    d = diagnose(hardly_fitting(), recipe=aug, data=digits_data())
    finding, action = first(d)
    assert finding.rule == "underfitting" and finding.evidence["augmentation"] == {
        "data.augment.rotation": 0.5, "data.augment.translate": 0.4}
    # Only the factors far beyond the usual move, back to usual values; zoom 0.1 stays.
    assert action.change == {"data.augment.rotation": [0.5, 0.05], "data.augment.translate": [0.4, 0.1]}


def test_usual_augmentation_is_not_blamed_for_underfitting():
    d = diagnose(hardly_fitting(), recipe=with_augment(recipe(), rotation=0.05, translate=0.1),
                 data=digits_data())
    assert not any(p.startswith("data.augment") for p in first(d)[1].patch)


def test_heavy_label_smoothing_is_lowered_first_and_its_loss_floor_is_named():
    d = diagnose(hardly_fitting(), recipe=recipe(**{"loss.label_smoothing": 0.9}), data=digits_data())
    finding, action = first(d)
    assert action.change == {"loss.label_smoothing": [0.9, 0.1]}
    # Smoothed targets 0.19 / 0.09: their entropy is the lowest loss training can reach.
    assert finding.evidence["label_smoothing"]["loss_floor"] == pytest.approx(2.266, abs=1e-3)
    assert "2.27" in action.why
    d = diagnose(hardly_fitting(), recipe=recipe(**{"loss.label_smoothing": 0.1}), data=digits_data())
    assert "loss.label_smoothing" not in first(d)[1].patch


def cut_off(n=N, gamma=0.3):
    """The run of an exponential schedule that decays by 0.3 per epoch: training freezes
    a few epochs in, once the rate is below 1e-5, far from what the model can do."""
    lr = 3e-3 * gamma ** T[:n]
    progress = 1 - np.exp(-np.cumsum(lr) / 2e-3)  # how far training got: frozen once lr is ~0
    loss = 2.3 - 0.9 * progress
    return {"loss": loss, "val_loss": loss - 0.05, "accuracy": 0.1 + 0.6 * progress,
            "val_accuracy": 0.12 + 0.6 * progress, "lr": lr}


def test_a_schedule_that_cuts_the_rate_to_nothing_early_is_named_first():
    exponential = {**recipe(), "schedule": {"name": "exponential", "gamma": 0.3}}
    d = diagnose(cut_off(), recipe=exponential, data=digits_data())
    finding, action = first(d)
    assert action.change == {"schedule.name": ["exponential", "cosine"]}, (d.labels, action)
    assert finding.evidence["schedule_cut"]["learning_rate"] < 1e-5


@pytest.mark.parametrize("schedule", [None, "cosine"])
def test_the_same_curves_without_such_a_schedule_get_no_schedule_change(schedule):
    # A bare log's or a cosine run's low rate may be fine-tuning or the end of a decay.
    rec = None if schedule is None else {**recipe(), "schedule": {"name": schedule}}
    d = diagnose(cut_off(), recipe=rec, data=None if rec is None else digits_data())
    assert not any("schedule.name" in a.patch for f in d.findings for a in f.actions[:1])


def test_a_plateau_schedule_low_rate_is_not_the_cause():
    # A plateau schedule cuts the rate only after validation stopped improving.
    d = diagnose(cut_off(), recipe={**recipe(), "schedule": {"name": "plateau"}}, data=digits_data())
    assert not any("schedule.name" in a.patch for f in d.findings for a in f.actions[:1])


def test_sgd_with_gradients_clipped_to_almost_nothing_gets_the_clip_raised():
    sgd = recipe(**{"optimizer.name": "sgd", "optimizer.learning_rate": 0.05, "optimizer.clipnorm": 1e-4})
    d = diagnose(at_chance(), recipe=sgd, data=digits_data())
    finding, action = first(d)
    assert finding.rule == "stalled" and action.change == {"optimizer.clipnorm": [1e-4, 1.0]}
    # Adam normalises each step by the gradient's scale: clipping is not what stalls it.
    adamw = recipe(**{"optimizer.clipnorm": 1e-4})
    assert "optimizer.clipnorm" not in first(diagnose(at_chance(), recipe=adamw, data=digits_data()))[1].patch


def test_noisy_validation_of_a_poor_model_stays_a_finding():
    # Nothing else fired, but 40 % accuracy is not a healthy model read unsteadily.
    poor = healthy_but_noisy()
    poor["val_accuracy"] = poor["val_accuracy"] - 0.55
    poor["accuracy"] = poor["accuracy"] - 0.55
    d = diagnose(poor, recipe=recipe(), data=with_validation(digits_data()))
    assert "noisy_validation" in d.labels and not d.healthy


def test_augmentation_behind_a_half_learned_training_set_is_named_though_the_loss_fell():
    # The loss fell by 30 %, so the underfitting rule (which reads the loss) is silent, but
    # training accuracy ends at 0.4 of 10 classes: the augmentation is why.
    loss = 1.6 + 0.9 * np.exp(-T / 6)
    history = {"loss": loss, "val_loss": loss + 0.1 * ZIG, "accuracy": 0.4 - 0.3 * np.exp(-T / 6),
               "val_accuracy": 0.38 - 0.3 * np.exp(-T / 6) + 0.05 * ZIG}
    aug = with_augment(recipe(), rotation=0.5)
    d = diagnose(history, recipe=aug, data=with_validation(digits_data()))
    finding, action = first(d)
    assert finding.rule == "underfitting" and "0.40" in finding.summary, d.labels
    assert action.change == {"data.augment.rotation": [0.5, 0.05]}
    plain = diagnose(history, recipe=with_augment(recipe(), rotation=0.05), data=with_validation(digits_data()))
    assert not any(a.patch.keys() & {"data.augment.rotation"} for f in plain.findings for a in f.actions)


def test_a_clip_that_hid_a_rate_far_too_high_is_raised_with_the_rate_brought_into_range():
    # Clipped to 1e-3, SGD at lr 5 takes steps of 5e-3 and learns nothing; loosening the
    # clip alone would let steps of 5 through.
    sgd = recipe(**{"optimizer.name": "sgd", "optimizer.learning_rate": 5.0, "optimizer.clipnorm": 1e-3})
    action = first(diagnose(at_chance(), recipe=sgd, data=digits_data()))[1]
    assert action.change == {"optimizer.clipnorm": [1e-3, 1.0], "optimizer.learning_rate": [5.0, 0.05]}


def diverging(n=N):
    """Learns for 10 epochs, then the loss blows up to NaN."""
    loss = np.where(T[:n] < 10, 2.0 - T[:n] / 10, np.where(T[:n] < 14, 10.0 ** (T[:n] - 9), np.nan))
    acc = np.where(T[:n] < 10, 0.2 + 0.05 * T[:n], 0.1)
    return {"loss": loss, "val_loss": loss + 0.1, "accuracy": acc, "val_accuracy": acc - 0.02}


@pytest.mark.parametrize("paths", [
    {"optimizer.name": "sgd", "optimizer.learning_rate": 0.05, "optimizer.clipnorm": 1e-4},
    {"loss.label_smoothing": 0.5},
])
def test_a_diverged_run_is_not_blamed_on_clipping_or_smoothing(paths):
    d = diagnose(diverging(), recipe=recipe(**paths), data=digits_data())
    finding, action = first(d)
    assert finding.rule == "diverged"
    assert not action.patch.keys() & {"optimizer.clipnorm", "loss.label_smoothing"}, action


def test_a_diverged_run_is_not_blamed_on_augmentation_or_the_schedule():
    history = {**diverging(), "lr": 3e-3 * 0.3 ** T}
    rec = with_augment({**recipe(), "schedule": {"name": "exponential"}}, rotation=0.5)
    finding, action = first(diagnose(history, recipe=rec, data=digits_data()))
    assert finding.rule == "diverged"
    assert not any(p.startswith("data.augment") or p == "schedule.name" for p in action.patch), action


def test_saturation_and_hue_are_not_blamed_on_grayscale_images():
    # Keras's saturation and hue layers act on RGB only; kadvisor skips them otherwise.
    grey = with_augment({**recipe(), "data": {"balance": "none", "channels": 1}}, saturation=0.6, hue=0.4)
    assert not any(p.startswith("data.augment") for p in first(
        diagnose(hardly_fitting(), recipe=grey, data=digits_data()))[1].patch)
    rgb = with_augment({**recipe(), "data": {"balance": "none", "channels": 3}}, saturation=0.6)
    assert first(diagnose(hardly_fitting(), recipe=rgb, data=digits_data()))[1].change == {
        "data.augment.saturation": [0.6, 0.2]}


@pytest.mark.parametrize("change", ["stages", "late", "low_start"])
def test_a_rate_cut_is_read_only_early_after_a_usual_start_and_without_stages(change):
    history, rec = cut_off(), {**recipe(), "schedule": {"name": "exponential"}}
    if change == "stages":
        rec["stages"] = [{"name": "head", "epochs": 5}, {"name": "finetune", "epochs": 25}]
    elif change == "late":
        history["lr"] = np.where(T < 20, 3e-3, 3e-7)  # cut in the second half
    else:
        history["lr"] = np.full(N, 5e-5) * 0.3 ** T  # started below AdamW's range: not a cut
    run = from_mapping(history)
    run.recipe, run.data = rec, digits_data()
    features = RunFeatures.from_run(run)
    assert RunContext.from_features(features).rate_cut_early(features) is None
    history_ok, run_ok = cut_off(), from_mapping(cut_off())
    run_ok.recipe, run_ok.data = {**recipe(), "schedule": {"name": "exponential"}}, digits_data()
    ok = RunFeatures.from_run(run_ok)
    assert RunContext.from_features(ok).rate_cut_early(ok) is not None


def test_non_finite_recipe_numbers_are_not_read():
    d = diagnose(hardly_fitting(), recipe=recipe(**{"loss.label_smoothing": float("nan")}), data=digits_data())
    assert "loss.label_smoothing" not in first(d)[1].patch
