"""`kadvisor evaluate RUN_DIR`: per-class report, top-k, confusion matrix and mistakes."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import kadvisor
from kadvisor import rundir
from kadvisor.cli import main
from kadvisor.data import load_split_arrays
from kadvisor.errors import DataError, InputError, ModelError
from kadvisor.evaluation.evaluate import evaluate_run, most_confident_mistakes
from kadvisor.evaluation.runs import load_model, open_run, predict_split
from kadvisor.recipe import recipe_from_dict

TINY = {
    "name": "tiny",
    "data": {"source": "sklearn:digits", "image_size": [8, 8], "channels": 1},
    "model": {"width": 8},
    "optimizer": {"learning_rate": 3e-3},
    "train": {"epochs": 2, "batch_size": 64},
    "advisor": {"live": False},
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short run on fold 2 of 3, so rebuilding its validation split needs the fold."""
    path = tmp_path_factory.mktemp("runs") / "fold-2"
    kadvisor.fit(recipe_from_dict(TINY), quiet=True, fold=1, num_folds=3, run_dir=path)
    return path


@pytest.fixture(scope="module")
def test_evaluation(run_dir):
    return evaluate_run(run_dir)


def test_evaluate_writes_its_three_files_atomically(run_dir, test_evaluation):
    names = {p.name for p in run_dir.iterdir()}
    assert {"evaluation-test.json", "confusion-test.png", "mistakes-test.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    for name in ("confusion-test.png", "mistakes-test.png"):
        assert (run_dir / name).read_bytes()[:8] == PNG_MAGIC
    saved = json.loads((run_dir / "evaluation-test.json").read_text())
    assert saved == json.loads(json.dumps(test_evaluation.results))
    assert test_evaluation.files == [run_dir / n for n in
                                     ("evaluation-test.json", "confusion-test.png", "mistakes-test.png")]


def test_rebuilt_test_split_scores_as_during_training(run_dir, test_evaluation):
    r = test_evaluation.results
    metrics = rundir.read_json(run_dir / rundir.METRICS)
    assert r["size"] == 360
    assert r["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    assert r["log_loss"] == pytest.approx(metrics["test"]["loss"], rel=1e-3)


def test_confusion_matrix_report_and_mistakes_agree(test_evaluation):
    r = test_evaluation.results
    cm = np.array(r["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == r["size"]
    assert np.trace(cm) / cm.sum() == pytest.approx(r["accuracy"])
    assert r["num_mistakes"] == cm.sum() - np.trace(cm)
    recalls = np.diag(cm) / cm.sum(axis=1)
    for i, name in enumerate(r["class_names"]):
        assert r["per_class"][name]["recall"] == pytest.approx(recalls[i])
        assert r["per_class"][name]["support"] == cm[i].sum()
    assert r["worst_recall"] == pytest.approx(recalls.min())
    assert r["worst_class"] == r["class_names"][int(np.argmin(recalls))]
    assert r["per_class"]["macro avg"]["f1-score"] == pytest.approx(r["macro_f1"])
    mistakes = r["mistakes"]
    assert len(mistakes) == min(25, r["num_mistakes"]) > 0
    confidences = [m["confidence"] for m in mistakes]
    assert confidences == sorted(confidences, reverse=True)
    assert all(m["true"] != m["predicted"] and m["true_probability"] < m["confidence"] for m in mistakes)


def test_top_k_accuracy_grows_with_k_and_starts_above_accuracy(test_evaluation):
    r = test_evaluation.results
    assert list(r["top_k_accuracy"]) == ["3", "5"]
    assert r["accuracy"] <= r["top_k_accuracy"]["3"] <= r["top_k_accuracy"]["5"] <= 1


def test_validation_split_of_a_fold_run_is_its_own_fold(run_dir):
    r = evaluate_run(run_dir, "validation").results
    data = rundir.read_json(run_dir / rundir.DATA)
    metrics = rundir.read_json(run_dir / rundir.METRICS)
    assert r["size"] == data["splits"]["validation"]["size"]
    # model.keras is the best epoch's model: it scores that epoch's val_accuracy.
    assert r["accuracy"] == pytest.approx(metrics["best"]["val_accuracy"], abs=1e-6)
    assert (run_dir / "evaluation-validation.json").exists()


def test_most_confident_mistakes_are_ranked_by_the_predicted_probability():
    y = np.array([0, 1, 2, 0])
    proba = np.array([[0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.4, 0.5, 0.1]])
    mistakes = most_confident_mistakes(y, proba, ["a", "b", "c"], limit=2)
    assert [(m["index"], m["true"], m["predicted"]) for m in mistakes] == [(2, "c", "a"), (0, "a", "b")]
    assert mistakes[0]["confidence"] == 0.9 and mistakes[0]["true_probability"] == 0.05


def test_mistake_images_kept_across_batches_are_those_of_the_listed_mistakes(run_dir):
    run = open_run(run_dir)
    predictions = predict_split(run, load_model(run), "test", keep_mistakes=10, batch_size=16)
    x, y = load_split_arrays(run.recipe, "test")
    assert np.array_equal(predictions.y, y)
    listed = most_confident_mistakes(predictions.y, predictions.proba, run.class_names, 10)
    assert [m["index"] for m in listed] == list(predictions.mistake_images)
    for i, image in predictions.mistake_images.items():
        assert np.array_equal(image, x[i])


def copy_run(run_dir, path):
    path.mkdir()
    for name in (rundir.RECIPE, rundir.DATA, rundir.MODEL):
        (path / name).write_bytes((run_dir / name).read_bytes())
    return path


def test_changed_data_is_reported_instead_of_scored(run_dir, tmp_path):
    copy = copy_run(run_dir, tmp_path / "copy")
    data = rundir.read_json(run_dir / rundir.DATA)
    data["splits"]["test"]["counts"]["3"] += 1
    rundir.write_json_atomic(copy / rundir.DATA, data)
    with pytest.raises(DataError, match="data.json recorded 361"):
        evaluate_run(copy)


def test_a_recipe_that_no_longer_fits_the_model_is_a_model_error(run_dir, tmp_path):
    copy = copy_run(run_dir, tmp_path / "copy")
    text = (copy / rundir.RECIPE).read_text()
    (copy / rundir.RECIPE).write_text(text.replace("image_size = [8, 8]", "image_size = [12, 12]"))
    with pytest.raises(ModelError, match=r"takes images of shape \(8, 8, 1\) but the split has \(12, 12, 1\)"):
        evaluate_run(copy)


def test_cli_prints_the_report_and_errors_in_one_line(run_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "macro avg" in result.output
    assert "top-3" in result.output and f"wrote {run_dir / 'mistakes-test.png'}" in result.output
    result = runner.invoke(main, ["evaluate", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {tmp_path}: no recipe.toml, data.json, model.keras; expected a finished run "
        "directory from kadvisor fit"]
    with pytest.raises(InputError, match="not a directory"):
        evaluate_run(tmp_path / "nothing")
