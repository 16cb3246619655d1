"""`kadvisor ensemble RUN_DIR...`: members beside their mean / vote on the common test split.

The run directories here hold untrained models (built and saved, no fit): an ensemble's
arithmetic does not need good models, and this keeps the tests fast.
"""

import shutil

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kadvisor import rundir
from kadvisor.cli import main
from kadvisor.data import load_split_arrays, prepare_data
from kadvisor.errors import DataError, InputError
from kadvisor.evaluation.ensemble import combine, ensemble_runs, expand_runs
from kadvisor.models import build_model
from kadvisor.recipe import recipe_from_dict, to_toml

TINY = {
    "name": "tiny",
    "data": {"source": "sklearn:digits", "image_size": [8, 8], "channels": 1},
    "model": {"width": 4},
}


def make_run(path, seed: int, **data_fields):
    """A run directory with an untrained model whose weights depend on ``seed``."""
    recipe = recipe_from_dict({**TINY, "data": {**TINY["data"], **data_fields}})
    info = prepare_data(recipe, batched=False).info
    keras.utils.set_random_seed(seed)
    model = build_model(recipe, info.num_classes, tuple(info.image_shape))
    path.mkdir(parents=True)
    rundir.write_text_atomic(path / rundir.RECIPE, to_toml(recipe))
    rundir.write_json_atomic(path / rundir.DATA, info.to_json())
    rundir.save_model_atomic(model, path / rundir.MODEL)
    return path, recipe, model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return [make_run(root / f"run-{seed}", seed) for seed in (1, 2, 3)]


def test_an_ensemble_of_identical_models_equals_the_single_model(runs, tmp_path):
    path = runs[0][0]
    copies = [shutil.copytree(path, tmp_path / f"copy-{i}") for i in range(3)]
    for method in ("mean", "vote"):
        result = ensemble_runs(copies, method)
        single = result.members[0][1]
        assert all(scores == single for _, scores in result.members)
        for name in ("accuracy", "macro_f1", "worst_recall"):
            assert result.ensemble[name] == pytest.approx(single[name], abs=1e-12)
    assert ensemble_runs(copies, "mean").ensemble["log_loss"] == pytest.approx(single["log_loss"])


def test_mean_ensemble_scores_the_averaged_probabilities(runs):
    recipe = runs[0][1]
    x, y = load_split_arrays(recipe, "test")
    mean = np.mean([model.predict(x, verbose=0) for _, _, model in runs], axis=0)
    result = ensemble_runs([path for path, _, _ in runs], "mean")
    assert result.size == len(y) == 360
    assert result.ensemble["accuracy"] == pytest.approx(np.mean(mean.argmax(1) == y))
    member = np.mean(runs[1][2].predict(x, verbose=0).argmax(1) == y)
    assert result.members[1][1]["accuracy"] == pytest.approx(member)
    assert [p for p, _ in result.members] == [path for path, _, _ in runs]


def test_vote_takes_the_majority_and_breaks_ties_by_mean_probability():
    probas = np.array([
        [[0.6, 0.4, 0.0], [0.5, 0.0, 0.5]],
        [[0.6, 0.4, 0.0], [0.0, 0.6, 0.4]],
        [[0.1, 0.9, 0.0], [0.0, 0.3, 0.7]],
    ])
    proba, predicted = combine(probas, "vote")
    assert proba is None
    # Example 1: votes 0, 0, 1 -> 0 although the mean favours 1 (0.57 > 0.43).
    # Example 2: votes 0, 1, 2 tie -> 2, the highest mean probability (0.53).
    assert predicted.tolist() == [0, 2]
    proba, predicted = combine(probas, "mean")
    assert predicted.tolist() == [1, 2] and proba == pytest.approx(probas.mean(0))


def test_members_with_other_training_fields_and_input_sizes_may_be_combined(runs, tmp_path):
    other, _, _ = make_run(tmp_path / "other", 4, subsample=0.5, image_size=[12, 12], channels=3)
    result = ensemble_runs([runs[0][0], other])
    assert len(result.members) == 2 and result.size == 360


@pytest.mark.parametrize("field, value, message", [
    ("test_fraction", 0.3, "data.test_fraction = 0.3 but"),
    ("classes", ["0", "1", "2"], "data.classes = \\['0', '1', '2'\\] but"),
])
def test_runs_tested_on_other_examples_are_refused(runs, tmp_path, field, value, message):
    other, _, _ = make_run(tmp_path / "other", 4, **{field: value})
    with pytest.raises(DataError, match=message):
        ensemble_runs([runs[0][0], other])


def test_another_seed_carves_another_test_split_and_is_refused(runs, tmp_path):
    other = shutil.copytree(runs[0][0], tmp_path / "other")
    text = (other / rundir.RECIPE).read_text()
    (other / rundir.RECIPE).write_text(text.replace("seed = 42", "seed = 7", 1))
    with pytest.raises(DataError, match="seed = 7 but .* has 42; expected runs tested on the same split"):
        ensemble_runs([runs[0][0], other])


def test_a_kfold_parent_stands_for_its_fold_runs(runs, tmp_path):
    parent = tmp_path / "tiny-kfold"
    for i in (1, 2):
        shutil.copytree(runs[i - 1][0], parent / f"fold-{i}")
    rundir.write_json_atomic(parent / "kfold.json", {"folds": 2, "runs": ["fold-1", "fold-2"]})
    assert expand_runs([parent, runs[2][0]]) == [parent / "fold-1", parent / "fold-2", runs[2][0]]
    result = CliRunner().invoke(main, ["ensemble", str(parent), "--method", "vote"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "test split: 360 examples"
    assert lines[1].split() == ["run", "accuracy", "macro_f1", "worst_recall", "log_loss"]
    assert lines[2].startswith("tiny-kfold/fold-1") and lines[3].startswith("tiny-kfold/fold-2")
    assert lines[4].startswith("members' mean") and lines[5].startswith("ensemble (vote of 2)")
    assert lines[5].split()[-1] == "-"  # a vote has no probabilities, so no log loss


def test_fewer_than_two_runs_or_a_bad_method_is_an_input_error(runs):
    with pytest.raises(InputError, match="expected at least two run directories"):
        ensemble_runs([runs[0][0]])
    with pytest.raises(InputError, match="--method: got 'median'"):
        ensemble_runs([runs[0][0], runs[1][0]], "median")
