"""`kadvisor fit --kfold K`: one fold run per stratified fold under a parent with kfold.json."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kadvisor import rundir
from kadvisor.cli import main
from kadvisor.errors import DataError, RecipeError
from kadvisor.recipe import load_recipe, recipe_from_dict, to_toml
from kadvisor.training import kfold
from kadvisor.training.fit import Interrupted

TINY = {
    "name": "tiny",
    "data": {"source": "sklearn:digits", "image_size": [8, 8], "channels": 1},
    "model": {"width": 4},
    "train": {"epochs": 3, "batch_size": 64},
    "advisor": {"live": False},
}


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A 2-fold CLI run of one epoch per fold."""
    root = tmp_path_factory.mktemp("kfold")
    recipe = root / "tiny.toml"
    recipe.write_text(to_toml(recipe_from_dict(TINY)))
    result = CliRunner().invoke(main, ["fit", str(recipe), "--kfold", "2", "--epochs", "1",
                                       "--out", str(root / "runs")])
    assert result.exit_code == 0, result.output
    (path,) = (root / "runs").iterdir()
    assert result.output.strip().splitlines()[-1] == str(path)
    return path, result.output


def test_parent_layout_and_kfold_json(parent):
    path, _ = parent
    assert path.name.startswith("tiny-kfold-")
    assert {p.name for p in path.iterdir()} == {"recipe.toml", "kfold.json", "fold-1", "fold-2"}
    summary = json.loads((path / "kfold.json").read_text())
    assert summary["folds"] == 2 and summary["runs"] == ["fold-1", "fold-2"]
    assert summary["status"] == "finished"
    recipe = load_recipe(path / "recipe.toml")
    assert recipe.validation.kfold == 2 and recipe.train.epochs == 1
    for name in summary["runs"]:
        fold = path / name
        assert {rundir.RECIPE, rundir.DATA, rundir.METRICS, rundir.MODEL, rundir.HISTORY} <= {
            p.name for p in fold.iterdir()}
        assert len(rundir.read_history_rows(fold / rundir.HISTORY)) == 1


def test_summary_is_mean_and_std_of_the_folds_test_and_best_validation_metrics(parent):
    path, output = parent
    summary = json.loads((path / "kfold.json").read_text())["summary"]
    assert {"test_accuracy", "test_loss", "val_accuracy", "val_loss"} <= set(summary)
    folds = [rundir.read_json(path / f"fold-{i}" / rundir.METRICS) for i in (1, 2)]
    assert summary["test_accuracy"]["values"] == pytest.approx([m["test"]["accuracy"] for m in folds])
    assert summary["val_loss"]["values"] == pytest.approx([m["best"]["val_loss"] for m in folds])
    for name, s in summary.items():
        assert s["mean"] == pytest.approx(np.mean(s["values"]))
        assert s["std"] == pytest.approx(np.std(s["values"]))
        assert f"{name}  " in output and f"{s['mean']:.4f} ± {s['std']:.4f}" in output


def test_fold_runs_validate_on_disjoint_stratified_folds_and_share_the_test_split(parent):
    path, _ = parent
    facts = [rundir.read_json(path / f"fold-{i}" / rundir.DATA) for i in (1, 2)]
    assert [(f["fold"], f["num_folds"]) for f in facts] == [(0, 2), (1, 2)]
    assert all(f["splits"]["test"] == facts[0]["splits"]["test"] for f in facts)
    counts = np.array([list(f["splits"]["validation"]["counts"].values()) for f in facts])
    train = np.array(list(facts[0]["splits"]["train"]["counts"].values()))
    # Disjoint and covering: one fold's training data is exactly the other fold.
    assert np.array_equal(train, counts[1])
    assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 1)  # stratified
    assert counts.sum() + facts[0]["splits"]["test"]["size"] == 1797


def test_summarise_skips_missing_metrics_and_ignores_training_ones():
    folds = [
        {"best": {"loss": 0.1, "val_loss": 1.0, "val_accuracy": 0.5}, "test": {"accuracy": 0.6}},
        {"best": {"loss": 0.2, "val_loss": 3.0}, "test": {"accuracy": 0.8}},
    ]
    summary = kfold.summarise(folds)
    assert set(summary) == {"val_loss", "val_accuracy", "test_accuracy"}
    assert summary["val_loss"] == {"mean": 2.0, "std": 1.0, "values": [1.0, 3.0]}
    assert summary["val_accuracy"]["values"] == [0.5]
    assert summary["test_accuracy"]["mean"] == pytest.approx(0.7)


def test_fewer_than_two_folds_is_a_recipe_error(tmp_path):
    with pytest.raises(RecipeError, match="validation.kfold: got 1; expected at least 2"):
        kfold.fit_kfold(recipe_from_dict(TINY), tmp_path, folds=1)
    assert not any(tmp_path.iterdir())


def test_a_data_error_in_the_first_fold_leaves_no_parent_behind(tmp_path):
    bad = {**TINY, "data": {**TINY["data"], "source": f"npz:{tmp_path / 'missing.npz'}"}}
    with pytest.raises(DataError):
        kfold.fit_kfold(recipe_from_dict(bad), tmp_path / "runs", folds=2)
    assert not any((tmp_path / "runs").iterdir())


def _fake_fit(interrupt_at):
    """Stands in for `fit`: writes a fold's metrics.json, or is interrupted at one fold."""
    def fit(recipe, *, fold, num_folds, run_dir, **kwargs):
        if fold == interrupt_at:
            raise Interrupted("interrupted")
        run_dir.mkdir()
        rundir.write_json_atomic(run_dir / rundir.METRICS, {
            "best": {"val_loss": 1.0 + fold}, "test": {"accuracy": 0.5 + fold / 10}})
    return fit


def test_an_interrupted_cross_validation_keeps_the_finished_folds(tmp_path, monkeypatch):
    monkeypatch.setattr("kadvisor.training.fit.fit", _fake_fit(interrupt_at=2))
    with pytest.raises(Interrupted, match="interrupted in fold 3 of 4; the 2 finished folds"):
        kfold.fit_kfold(recipe_from_dict(TINY), tmp_path, folds=4)
    (path,) = tmp_path.iterdir()
    saved = json.loads((path / "kfold.json").read_text())
    assert saved["status"] == "interrupted" and saved["runs"] == ["fold-1", "fold-2"]
    assert saved["summary"]["test_accuracy"]["values"] == pytest.approx([0.5, 0.6])


def test_validation_kfold_in_the_recipe_is_used_without_the_option(tmp_path, monkeypatch):
    monkeypatch.setattr("kadvisor.training.fit.fit", _fake_fit(interrupt_at=None))
    lines = []
    result = kfold.fit_kfold(recipe_from_dict({**TINY, "validation": {"kfold": 2}}), tmp_path,
                             printer=lines.append)
    assert result.folds == 2 and [r.name for r in result.runs] == ["fold-1", "fold-2"]
    assert json.loads((result.path / "kfold.json").read_text())["status"] == "finished"
    assert "  val_loss       1.5000 ± 0.5000" in lines
