"""The recipe/data-aware rules: class_imbalance, unfreeze_backbone,
train_from_scratch_small_data, low_resolution — including when they must stay quiet."""

import numpy as np
import pytest

from kadvisor.advisor import diagnose
from kadvisor.advisor.inputs import from_mapping

N = 30


def curves(final_val_acc=0.8, n=N, stage=None):
    """Smooth, converging curves whose validation accuracy ends at ``final_val_acc``."""
    t = np.arange(n, dtype=float)
    loss = 0.3 + 1.7 * np.exp(-0.3 * t)
    acc = final_val_acc * (1 - np.exp(-0.3 * t)) + 0.1 * np.exp(-0.3 * t)
    c = {"loss": loss, "val_loss": loss * 1.1, "accuracy": np.minimum(acc + 0.02, 1.0), "val_accuracy": acc}
    if stage is not None:
        c["stage"] = stage
    return c


def data_json(counts, size=32, channels=3):
    return {"num_classes": len(counts), "splits": {"train": {"counts": counts, "size": sum(counts.values())}},
            "image_shape": [size, size, channels]}


def finding(d, rule):
    return next((f for f in d.findings if f.rule == rule), None)


def test_class_imbalance():
    recipe = {"data": {"balance": "none"}}
    d = diagnose(curves(), recipe=recipe, data=data_json({"a": 900, "b": 100}))
    actions = finding(d, "class_imbalance").actions
    assert actions[0].patch == {"data.balance": "class_weight"}
    assert actions[0].change["data.balance"] == ["none", "class_weight"]
    assert {"loss.name": "focal"} in [a.patch for a in actions]
    assert "class_imbalance" not in diagnose(curves(), recipe=recipe, data=data_json({"a": 500, "b": 400})).labels
    balanced = {"data": {"balance": "class_weight"}}
    assert "class_imbalance" not in diagnose(curves(), recipe=balanced, data=data_json({"a": 900, "b": 100})).labels
    border = data_json({"a": 290, "b": 100})  # 2.9:1, below the 3:1 default
    assert "class_imbalance" not in diagnose(curves(), recipe=recipe, data=border).labels


HEAD_ONLY = {"optimizer": {"learning_rate": 1e-3},
             "stages": [{"name": "head", "trainable": "head", "optimizer.learning_rate": 3e-3}]}


def test_unfreeze_backbone_after_a_converged_head_stage():
    d = diagnose(curves(stage=["head"] * N), recipe=HEAD_ONLY)
    f = finding(d, "unfreeze_backbone")
    assert f.evidence["converged"] is True
    stages = f.actions[0].patch["stages"]
    assert stages[0] == HEAD_ONLY["stages"][0]
    assert stages[-1]["trainable"] == "all" and stages[-1]["optimizer"]["learning_rate"] == pytest.approx(3e-4)


def test_unfreeze_backbone_stays_quiet_when_it_does_not_apply():
    both = {"stages": [{"name": "head", "trainable": "head"}, {"name": "ft", "trainable": "all"}]}
    staged = ["head"] * 10 + ["ft"] * (N - 10)
    assert "unfreeze_backbone" not in diagnose(curves(stage=staged), recipe=both).labels
    # the head is still improving: train it longer first (still_improving says so)
    rising = curves(stage=["head"] * N)
    rising["val_loss"] = np.linspace(2.0, 0.5, N)
    assert "unfreeze_backbone" not in diagnose(rising, recipe=HEAD_ONLY).labels
    # already near-perfect on validation (the saved model's, metrics.json of a run directory)
    run = from_mapping(curves(stage=["head"] * N))
    run.metrics = {"best": {"val_accuracy": 0.999}}
    assert "unfreeze_backbone" not in diagnose(run, recipe=HEAD_ONLY, data=data_json({"a": 50, "b": 50})).labels
    # ... but never on the test split: advice chosen on it would be scored on it
    run.metrics = {"test": {"accuracy": 0.999}}
    assert "unfreeze_backbone" in diagnose(run, recipe=HEAD_ONLY, data=data_json({"a": 50, "b": 50})).labels


def test_unfreeze_backbone_from_history_alone():
    assert "unfreeze_backbone" in diagnose(curves(stage=["head"] * N)).labels
    assert "unfreeze_backbone" not in diagnose(curves(stage=["train"] * N)).labels


SCRATCH = {"model": {"weights": "none", "backbone": "small_cnn"}, "data": {"image_size": [64, 64], "channels": 3}}


def test_train_from_scratch_small_data():
    d = diagnose(curves(0.6), recipe=SCRATCH, data=data_json({"a": 40, "b": 50}, 64))
    f = finding(d, "train_from_scratch_small_data")
    assert f.actions[0].patch == {"model.backbone": "resnet50", "model.weights": "imagenet"}
    many = data_json({"a": 4000, "b": 5000}, 64)
    assert "train_from_scratch_small_data" not in diagnose(curves(0.6), recipe=SCRATCH, data=many).labels
    pretrained = {"model": {"weights": "imagenet"}}
    assert "train_from_scratch_small_data" not in diagnose(curves(0.6), recipe=pretrained, data=data_json({"a": 40})).labels


def test_train_from_scratch_weighs_what_the_run_achieved():
    few = data_json({str(i): 40 for i in range(10)}, 64)
    near_perfect = curves(0.999)  # validation accuracy 99.9% on 10 classes
    assert "train_from_scratch_small_data" not in diagnose(near_perfect, recipe=SCRATCH, data=few).labels
    assert "train_from_scratch_small_data" in diagnose(curves(0.7), recipe=SCRATCH, data=few).labels


def test_train_from_scratch_checks_the_change_is_valid_for_the_input():
    tiny = {"model": {"weights": "none", "backbone": "small_cnn"}, "data": {"image_size": [16, 16], "channels": 1}}
    d = diagnose(curves(0.7), recipe=tiny, data=data_json({"a": 40, "b": 50}, 16, 1))
    assert "train_from_scratch_small_data" not in d.labels
    assert any(u.rule == "train_from_scratch_small_data" and "32" in u.summary for u in d.undecided)
    gray = {"model": {"weights": "none", "backbone": "small_cnn"}, "data": {"image_size": [64, 64], "channels": 1}}
    f = finding(diagnose(curves(0.7), recipe=gray, data=data_json({"a": 40, "b": 50}, 64, 1)),
                "train_from_scratch_small_data")
    assert f.actions[0].patch["data.channels"] == 3


def test_low_resolution():
    many = {f"c{i}": 30 for i in range(200)}
    recipe = {"data": {"image_size": [128, 128]}, "model": {"head": "gap", "weights": "imagenet"}}
    d = diagnose(curves(0.5), recipe=recipe, data=data_json(many, 128))
    assert finding(d, "low_resolution").actions[0].patch == {"data.image_size": [224, 224]}
    few = {f"c{i}": 30 for i in range(10)}
    assert "low_resolution" not in diagnose(curves(0.5), recipe=recipe, data=data_json(few, 128)).labels
    bilinear = {"data": {"image_size": [224, 224]}, "model": {"head": "bilinear", "weights": "imagenet"}}
    f = finding(diagnose(curves(0.5), recipe=bilinear, data=data_json(few, 224)), "low_resolution")
    assert f.actions[0].patch == {"data.image_size": [448, 448]}
    assert "low_resolution" not in diagnose(curves(0.999), recipe=bilinear, data=data_json(few, 224)).labels
