"""Class balancing end to end: class weights, focal loss and oversampling reach training.

Split-level checks (counts, scikit-learn's weights, balanced epochs) are in
test_data_splits.py; these check what the trainer receives and that training runs.
"""

import json

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kadvisor
from kadvisor import rundir
from kadvisor.data.balance import class_weights
from kadvisor.recipe import recipe_from_dict
from kadvisor.training.optimizers import build_loss

TINY = {
    "name": "tiny",
    "data": {"source": "sklearn:digits", "image_size": [8, 8], "channels": 1, "imbalance": 0.1},
    "model": {"width": 4},
    "train": {"epochs": 1, "batch_size": 64},
    "advisor": {"live": False},
}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=200))
def test_class_weights_are_inverse_class_frequency(labels):
    labels = np.array(labels)
    weights = class_weights(labels)
    present, counts = np.unique(labels, return_counts=True)
    assert sorted(weights) == present.tolist()  # absent classes get no entry
    for c, n in zip(present, counts):
        assert weights[c] == pytest.approx(len(labels) / (len(present) * n))


def test_focal_loss_is_keras_focal_crossentropy_with_the_recipe_parameters():
    recipe = recipe_from_dict({"loss": {"name": "focal", "gamma": 1.5, "alpha": 0.4}})
    loss, one_hot = build_loss(recipe, 3)
    assert one_hot and isinstance(loss, keras.losses.CategoricalFocalCrossentropy)
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    p = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]])
    expected = np.mean([0.4 * (1 - q) ** 1.5 * -np.log(q) for q in (0.7, 0.5)])
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-5)


@pytest.fixture
def fit_calls(monkeypatch):
    """Records the keyword arguments of every `keras.Model.fit` call."""
    calls = []
    original = keras.Model.fit

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    return calls


def test_class_weights_and_focal_loss_reach_model_fit(tmp_path, fit_calls):
    recipe = recipe_from_dict({**TINY, "data": {**TINY["data"], "balance": "class_weight"},
                               "loss": {"name": "focal"}})
    run = kadvisor.fit(recipe, tmp_path, quiet=True)
    data = json.loads((run.path / rundir.DATA).read_text())
    counts = np.array(list(data["splits"]["train"]["counts"].values()))
    assert counts.max() >= 8 * counts.min()  # data.imbalance = 0.1 made a long tail
    (call,) = fit_calls
    expected = {i: counts.sum() / (10 * n) for i, n in enumerate(counts)}
    assert call["class_weight"] == pytest.approx(expected)
    assert data["class_weight"]["9"] == pytest.approx(expected[9])
    assert isinstance(run.model.loss, keras.losses.CategoricalFocalCrossentropy)
    assert np.isfinite(run.metrics["test"]["loss"])


def test_oversampled_training_runs_epochs_of_the_training_split_size(tmp_path, fit_calls):
    recipe = recipe_from_dict({**TINY, "data": {**TINY["data"], "balance": "oversample"}})
    run = kadvisor.fit(recipe, tmp_path, quiet=True)
    (call,) = fit_calls
    assert call["class_weight"] is None
    size = json.loads((run.path / rundir.DATA).read_text())["splits"]["train"]["size"]
    assert run.model.optimizer.iterations.numpy() == -(-size // 64)  # one epoch of batches
    assert np.isfinite(run.metrics["test"]["loss"])
