"""Staged transfer learning: trainable parts per stage, frozen BatchNormalization
statistics while fine-tuning, and schedules that stay right under gradient accumulation."""

import numpy as np
import pytest

import keras

from kadvisor.data import prepare_data
from kadvisor.errors import ModelError
from kadvisor.models import build_model
from kadvisor.models.backbones import build_backbone
from kadvisor.recipe import recipe_from_dict
from kadvisor.training.loop import train_stages
from kadvisor.training.optimizers import build_optimizer
from kadvisor.training.stages import set_trainable


def _trainable_names(model):
    return {w.path for w in model.trainable_weights}


def _small_model(weights="none"):
    recipe = recipe_from_dict({"model": {"width": 4, "weights": weights}})
    return build_model(recipe, num_classes=3, input_shape=(8, 8, 1))


def test_trainable_head_all_and_from_layer():
    model = _small_model()
    backbone = model.get_layer("backbone")
    set_trainable(model, "head")
    assert _trainable_names(model) == {w.path for w in model.get_layer("classifier").trainable_weights}
    set_trainable(model, "from:block3_conv1")
    trainable = _trainable_names(model)
    assert any("block3_conv1" in p for p in trainable) and any("block3_bn2" in p for p in trainable)
    assert not any("block1" in p or "block2" in p for p in trainable)
    set_trainable(model, "all")  # unfreezes what the previous stages froze
    assert len(model.trainable_weights) == len(backbone.trainable_weights) + 2
    assert all(layer.trainable for layer in backbone.layers)


def test_from_an_unknown_layer_is_a_model_error_with_a_suggestion():
    with pytest.raises(ModelError, match="has no layer .block3_conv."):
        set_trainable(_small_model(), "from:block3_conv")


# --- BatchNormalization stays in inference mode while fine-tuning a pretrained backbone


@pytest.fixture(scope="module")
def pretrained_backbone(tmp_path_factory):
    """A small_cnn backbone file whose BN statistics are far from what digits produce."""
    backbone, _ = build_backbone("small_cnn", (8, 8, 1), "none", width=4)
    rng = np.random.default_rng(0)
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(2, 3, layer.moving_variance.shape))
    path = str(tmp_path_factory.mktemp("pretrained") / "backbone.weights.h5")
    backbone.save_weights(path)
    return path, backbone


def _bn_stats(model):
    return {w.path: keras.ops.convert_to_numpy(w) for layer in model.get_layer("backbone").layers
            if isinstance(layer, keras.layers.BatchNormalization)
            for w in (layer.moving_mean, layer.moving_variance)}


def _weights_of(model, part):
    return [keras.ops.convert_to_numpy(w) for w in model.get_layer(part).weights]


def _train_two_stages(weights):
    recipe = recipe_from_dict({
        "data": {"image_size": [8, 8], "channels": 1, "subsample": 0.2, "val_fraction": 0.1},
        "model": {"width": 4, "weights": weights},
        "optimizer": {"learning_rate": 0.01},
        "train": {"batch_size": 32},
        "stages": [{"name": "head", "trainable": "head", "train": {"epochs": 1}},
                   {"name": "finetune", "trainable": "all", "train": {"epochs": 1}}],
    })
    keras.utils.set_random_seed(0)
    data = prepare_data(recipe)
    model = build_model(recipe, data.info.num_classes, tuple(data.info.image_shape))
    snapshots = {"start": (_weights_of(model, "backbone"), _bn_stats(model))}

    class Snapshot(keras.callbacks.Callback):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def on_train_end(self, logs=None):
            snapshots[self.name] = (_weights_of(self.model, "backbone"), _bn_stats(self.model))

    train_stages(model, recipe, data, callbacks=lambda span: [Snapshot(span.stage.name)])
    return snapshots


def test_fine_tuning_a_pretrained_backbone_keeps_its_batchnorm_statistics(pretrained_backbone):
    path, _ = pretrained_backbone
    snapshots = _train_two_stages(path)
    start, head, finetune = snapshots["start"], snapshots["head"], snapshots["finetune"]
    # Stage 1 trains the head only: the backbone is bit-for-bit unchanged.
    for a, b in zip(start[0], head[0]):
        np.testing.assert_array_equal(a, b)
    # Stage 2 fine-tunes the backbone's weights (kernels, BN gamma/beta) ...
    assert any(not np.array_equal(a, b) for a, b in zip(head[0], finetune[0]))
    # ... but BN keeps the pretrained moving statistics (inference mode).
    for name, value in start[1].items():
        np.testing.assert_array_equal(finetune[1][name], value, err_msg=name)


def test_a_backbone_trained_from_scratch_does_update_its_batchnorm_statistics():
    # The control for the test above: the same check sees BN statistics move.
    snapshots = _train_two_stages("none")
    moved = [not np.array_equal(snapshots["finetune"][1][k], v) for k, v in snapshots["start"][1].items()]
    assert all(moved)


# --- Gradient accumulation: the learning rate in effect changes at the right update ----


def _rates_of_each_update(schedule: dict, accumulate: int, micro_batches: int, steps_per_epoch: int):
    """Trains w with loss = w (gradient 1) by plain SGD; returns -dw of every update."""
    recipe = recipe_from_dict({
        "optimizer": {"name": "sgd", "momentum": 0.0, "learning_rate": 1.0},
        "schedule": {"name": "multistep", "gamma": 0.1, **schedule},
        "train": {"accumulate": accumulate},
    })
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")(inputs))
    model.compile(optimizer=build_optimizer(recipe, steps_per_epoch), loss=lambda y, p: keras.ops.mean(p))
    kernel = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: kernel.append(float(model.get_weights()[0][0, 0])))
    ones = np.ones((micro_batches, 1), "float32")
    model.fit(ones, ones, batch_size=1, epochs=1, shuffle=False, verbose=0, callbacks=[record])
    steps = -np.diff([0.0, *kernel])
    updates = steps[np.abs(steps) > 0]
    # An update happens exactly at every accumulate-th micro-batch.
    assert np.flatnonzero(np.abs(steps) > 0).tolist() == list(range(accumulate - 1, micro_batches, accumulate))
    return updates.tolist()


@pytest.mark.parametrize("accumulate", [1, 4])
def test_step_boundaries_count_optimizer_updates_with_or_without_accumulation(accumulate):
    # steps = [2, 3]: updates 1-2 at the base rate, update 3 at x0.1, updates 4+ at x0.01.
    rates = _rates_of_each_update({"unit": "step", "steps": [2, 3]}, accumulate, 5 * accumulate, 100)
    np.testing.assert_allclose(rates, [1.0, 1.0, 0.1, 0.01, 0.01], rtol=1e-5)


def test_epoch_boundaries_count_micro_batches_per_epoch_under_accumulation():
    # 8 micro-batches per epoch, 4 per update: 2 updates per epoch; decay after epoch 1.
    rates = _rates_of_each_update({"unit": "epoch", "steps": [1]}, 4, 16, steps_per_epoch=8)
    np.testing.assert_allclose(rates, [1.0, 1.0, 0.1, 0.1], rtol=1e-5)


def test_a_truncated_backbones_weights_file_loads_into_the_same_recipe_again(tmp_path):
    # A bilinear head pools `feature_layer`, so a run saves the truncated backbone.
    first, _ = build_backbone("small_cnn", (8, 8, 1), "none", feature_layer="block2_relu2", width=4)
    path = str(tmp_path / "backbone.weights.h5")
    first.save_weights(path)
    again, _ = build_backbone("small_cnn", (8, 8, 1), path, feature_layer="block2_relu2", width=4)
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ModelError, match="does not fit backbone 'small_cnn'"):
        build_backbone("small_cnn", (8, 8, 1), path, width=4)  # the whole backbone needs more


# --- Stage boundaries on curves.png ---------------------------------------------------


def test_curves_mark_the_boundary_between_stages(tmp_path, monkeypatch):
    import matplotlib.axes

    from kadvisor.plotting import plot_history, stage_boundaries

    columns = {"epoch": [0.0, 1.0, 2.0, 3.0], "loss": [1.0, 0.8, 0.5, 0.4],
               "stage": ["head", "head", "finetune", "finetune"]}
    assert stage_boundaries(columns) == [(2.5, "finetune")]  # between epochs 2 and 3 (1-based)
    lines = []
    real = matplotlib.axes.Axes.axvline
    monkeypatch.setattr(matplotlib.axes.Axes, "axvline", lambda self, x=0, *a, **k: lines.append(x) or real(self, x, *a, **k))
    plot_history(columns, tmp_path / "curves.png")
    assert lines == [2.5] and (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


# --- examples/transfer_digits.py ----------------------------------------------------


def _transfer_example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "transfer_digits.py"
    spec = importlib.util.spec_from_file_location("transfer_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_transfer_example_compares_like_with_like():
    from kadvisor.recipe import load_recipe
    from pathlib import Path

    transfer = load_recipe(Path(__file__).resolve().parent.parent / "recipes" / "digits_transfer.toml")
    variants = _transfer_example().transfer_variants(transfer, "pre/backbone.weights.h5")
    scratch, head_only, fine_tuned = variants["scratch"], variants["head only"], variants["fine-tuned"]
    assert scratch.model.weights == "none" and not scratch.stages
    assert scratch.train.epochs == sum(s.overrides["train.epochs"] for s in transfer.stages)
    assert [s.trainable for s in head_only.stages] == ["head"]
    assert [s.trainable for s in fine_tuned.stages] == ["head", "all"]
    assert head_only.model.weights == fine_tuned.model.weights == "pre/backbone.weights.h5"
    assert {r.data.max_per_class for r in variants.values()} == {20}
    assert transfer.model.weights != "none"  # the loaded recipe itself is left unchanged


@pytest.mark.slow
@pytest.mark.xfail(reason="measured: fine-tuning from digits 0-4 ties or loses to scratch since the "
                          "BatchNormalization momentum fix (docs/bilinear.md, Transfer on digits)")
def test_transfer_example_fine_tuning_beats_training_from_scratch(tmp_path):
    results = _transfer_example().main(["--out", str(tmp_path)])
    assert results["fine-tuned"] > results["scratch"]
