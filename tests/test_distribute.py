"""Distribution strategies, replica scaling, precision and XLA from the recipe.

conftest.py splits the CPU into two logical devices, so MirroredStrategy runs here with
two replicas, as it would over two GPUs.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kadvisor
from kadvisor.data import prepare_data
from kadvisor.errors import KadvisorError
from kadvisor.models import build_model
from kadvisor.recipe import recipe_from_dict
from kadvisor.training.devices import build_strategy, precision, scale_for_replicas
from kadvisor.training.loop import train_stages

CPUS = ["/cpu:0", "/cpu:1"]


def _recipe(**sections):
    base = {
        "seed": 3,
        "data": {"source": "synthetic:textures", "image_size": [16, 16], "channels": 3,
                 "shuffle": False, "val_fraction": 0.2, "test_fraction": 0.2},
        "model": {"backbone": "small_cnn", "width": 4, "head": "compact_bilinear",
                  "pooling_dim": 64},
        "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.0},
        "train": {"epochs": 2, "batch_size": 16},
        "advisor": {"live": False},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return recipe_from_dict(base)


def _train_weights(recipe, strategy):
    """Trains from identical initial weights; returns the final classifier weights."""
    keras.utils.set_random_seed(recipe.seed)
    data = prepare_data(recipe)
    with strategy.scope():
        model = build_model(recipe, data.info.num_classes, tuple(data.info.image_shape))
        model.set_weights(_initial(recipe, data))
        train_stages(model, recipe, data)
    return [np.asarray(w) for w in model.get_layer("classifier").weights], model


_INITIAL = {}


def _initial(recipe, data):
    if "w" not in _INITIAL:
        keras.utils.set_random_seed(0)
        _INITIAL["w"] = build_model(recipe, data.info.num_classes, tuple(data.info.image_shape)).get_weights()
    return _INITIAL["w"]


def test_mirrored_over_two_devices_matches_one_device_for_the_same_global_batch():
    """Two replicas of batch 8 (global 16) take the same steps as one device with 16.

    The backbone is frozen: its BatchNormalization would otherwise normalise each
    replica's 8 images by their own statistics (not synchronised), a real difference.
    """
    head_only = [{"name": "head", "trainable": "head"}]
    mirrored = _recipe(distribute={"strategy": "mirrored", "devices": CPUS, "scale_batch": False})
    single = _recipe(distribute={"strategy": "one_device", "device": "/cpu:0"})
    mirrored.stages = single.stages = recipe_from_dict({"stages": head_only}).stages
    strategy = build_strategy(mirrored)
    assert strategy.num_replicas_in_sync == 2
    w_mirrored, model = _train_weights(mirrored, strategy)
    w_single, _ = _train_weights(single, build_strategy(single))
    assert model.get_layer("head").get_layer("compact_bilinear_pooling") is not None
    for a, b in zip(w_mirrored, w_single):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    assert not np.allclose(w_mirrored[0], _INITIAL["w"][-2])  # it did train


def test_fit_under_mirrored_scales_batch_and_learning_rate(tmp_path):
    recipe = _recipe(distribute={"strategy": "mirrored", "devices": CPUS}, train={"epochs": 1})
    run = kadvisor.fit(recipe, tmp_path, quiet=True)
    env = json.loads((run.path / "env.json").read_text())
    assert env["strategy"] == "MirroredStrategy" and env["replicas"] == 2
    assert env["global_batch_size"] == 32 and env["learning_rate"] == pytest.approx(0.1)
    assert run.recipe.train.batch_size == 16  # the recipe keeps the user's value
    assert "batch_size = 16" in (run.path / "recipe.toml").read_text()
    assert run.metrics["status"] == "finished"


@pytest.mark.parametrize("rule, factor", [("linear", 4), ("sqrt", 2), ("none", 1)])
def test_learning_rate_scaling_rules_apply_to_stages_too(rule, factor):
    recipe = _recipe(distribute={"lr_scaling": rule})
    recipe = recipe_from_dict({**recipe.to_dict(), "stages": [
        {"name": "a", "trainable": "head"},
        {"name": "b", "trainable": "all", "optimizer": {"learning_rate": 0.01}},
    ]})
    scaled = scale_for_replicas(recipe, 4)
    assert scaled.train.batch_size == 64
    assert scaled.optimizer.learning_rate == pytest.approx(0.05 * factor)
    assert scaled.for_stage(1).optimizer.learning_rate == pytest.approx(0.01 * factor)
    assert recipe.optimizer.learning_rate == 0.05  # the original is untouched
    assert scale_for_replicas(recipe, 1) is recipe


def test_unknown_device_and_missing_tpu_are_clear_errors():
    with pytest.raises(KadvisorError, match=r"no device '/gpu:7'.*expected one of"):
        build_strategy(_recipe(distribute={"strategy": "one_device", "device": "/gpu:7"}))
    with pytest.raises(KadvisorError, match="no TPU found"):
        build_strategy(_recipe(distribute={"strategy": "tpu"}))


def test_auto_on_a_cpu_machine_is_the_default_strategy():
    strategy = build_strategy(_recipe())
    assert strategy.num_replicas_in_sync == 1
    assert not isinstance(strategy, tf.distribute.MirroredStrategy)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_a_float32_output_and_scales_float16_losses(policy):
    recipe = _recipe(train={"precision": policy, "epochs": 1})
    data = prepare_data(recipe)
    with precision(policy):
        model = build_model(recipe, data.info.num_classes, tuple(data.info.image_shape))
        train_stages(model, recipe, data)
    assert model.output.dtype == "float32"
    assert model.get_layer("backbone").compute_dtype == policy.removeprefix("mixed_")
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")
    assert keras.config.dtype_policy().name == "float32"  # restored after the block


def test_jit_compile_setting_reaches_keras():
    recipe = _recipe(train={"jit_compile": "off", "epochs": 1})
    data = prepare_data(recipe)
    model = build_model(recipe, data.info.num_classes, tuple(data.info.image_shape))
    train_stages(model, recipe, data)
    assert model.jit_compile is False
