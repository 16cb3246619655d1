"""`kadvisor.fit`: a short real training run writes the whole run directory."""

import csv
import json

import keras
import numpy as np
import pytest

import kadvisor
from kadvisor import rundir
from kadvisor.recipe import load_recipe, recipe_from_dict
from kadvisor.training.callbacks import HistoryLogger

TINY = {
    "name": "tiny",
    "data": {"source": "sklearn:digits", "image_size": [8, 8], "channels": 1},
    "model": {"width": 4},
    "optimizer": {"learning_rate": 3e-3},
    "train": {"epochs": 2, "batch_size": 64},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return kadvisor.fit(recipe_from_dict(TINY), tmp_path_factory.mktemp("runs"), quiet=True)


def test_run_directory_has_every_file_of_the_contract(run):
    names = {p.name for p in run.path.iterdir()}
    expected = {rundir.RECIPE, rundir.HISTORY, rundir.DATA, rundir.ENV, rundir.METRICS,
                rundir.MODEL, rundir.CURVES}
    assert expected <= names
    assert not [n for n in names if n.endswith(".tmp")], "temporary files left behind"
    assert rundir.CHECKPOINT not in names  # a finished run has nothing to resume
    assert run.path.name.startswith("tiny-")


def test_resolved_recipe_reloads_with_every_default(run):
    saved = load_recipe(run.path / rundir.RECIPE)
    assert saved.to_dict() == run.recipe.to_dict()
    assert "shuffle_buffer" in (run.path / rundir.RECIPE).read_text()  # defaults written out


def test_history_has_one_row_per_epoch_with_the_extra_columns(run):
    with open(run.path / rundir.HISTORY, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "stage", "seconds"} <= set(rows[0])
    assert all(r["stage"] == "train" for r in rows)
    assert float(rows[0]["lr"]) == pytest.approx(3e-3)


def test_every_monitor_the_recipe_checks_allow_is_a_logged_column(run):
    """recipe/checks.py's LOGGED_METRICS must be what training logs (else train.monitor
    could name a metric nothing logs, and the "best" model would be the last)."""
    from kadvisor.recipe.checks import LOGGED_METRICS

    columns = set(rundir.read_history_rows(run.path / rundir.HISTORY)[0])
    assert {m for name in LOGGED_METRICS for m in (name, f"val_{name}")} <= columns


def test_data_json_counts_every_split(run):
    data = json.loads((run.path / rundir.DATA).read_text())
    sizes = {name: split["size"] for name, split in data["splits"].items()}
    assert set(sizes) == {"train", "validation", "test"}
    assert sum(sizes.values()) == 1797
    assert sizes["test"] == 360  # the stratified 20% test split
    assert data["num_classes"] == 10
    for split in data["splits"].values():
        assert sum(split["counts"].values()) == split["size"]


def test_env_and_metrics(run):
    env = json.loads((run.path / rundir.ENV).read_text())
    assert env["versions"]["keras"] == keras.__version__
    assert env["seed"] == 42 and env["replicas"] >= 1
    metrics = json.loads((run.path / rundir.METRICS).read_text())
    assert metrics["status"] == "finished"
    assert metrics["epochs"] == 2
    assert metrics["best_epoch"] in (0, 1)
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert metrics == run.metrics


@pytest.fixture(scope="module")
def blown_up(tmp_path_factory):
    """Two good epochs, then one at learning rate 5: the last epoch is far from the best."""
    recipe = recipe_from_dict({**TINY, "stages": [
        {"name": "good", "train": {"epochs": 2}},
        {"name": "blow_up", "train": {"epochs": 1}, "optimizer": {"learning_rate": 5.0}},
    ]})
    return kadvisor.fit(recipe, tmp_path_factory.mktemp("runs"), quiet=True)


def test_saved_model_is_the_best_epoch_not_the_last_and_loads_with_safe_mode(blown_up):
    """Checked independently of the checkpoint code: model.keras, evaluated again on the
    validation split, must reproduce the lowest val_loss history.csv logged."""
    from kadvisor.data import prepare_data
    from kadvisor.training.loop import labels_for_loss

    rows = rundir.read_history_rows(blown_up.path / rundir.HISTORY)
    val_loss = [float(r["val_loss"]) if r["val_loss"] not in ("", "nan") else np.inf for r in rows]
    best = int(np.argmin(val_loss))
    assert best < len(rows) - 1 and val_loss[-1] > 1.5 * val_loss[best], val_loss  # the case is real
    model = keras.models.load_model(blown_up.path / rundir.MODEL, safe_mode=True)
    model.compile(loss="sparse_categorical_crossentropy")
    data = prepare_data(blown_up.recipe)
    validation = labels_for_loss(data.validation, blown_up.recipe, data.info.num_classes)
    again = model.evaluate(validation, verbose=0, return_dict=True)["loss"]
    assert again == pytest.approx(val_loss[best], rel=1e-3)
    assert blown_up.metrics["best_epoch"] == best


def test_curves_png_is_an_image(run):
    assert (run.path / rundir.CURVES).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_is_on_disk_at_the_end_of_every_epoch(tmp_path):
    """Each row is written (and fsynced) before the next epoch starts."""
    path = tmp_path / "history.csv"
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(len(rundir.read_history_rows(path)))

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((8, 3), "float32"), np.zeros(8, "int32")
    model.fit(x, y, epochs=3, verbose=0, callbacks=[HistoryLogger(path, "s"), Probe()])
    assert seen == [1, 2, 3]


def test_a_row_cut_short_by_a_kill_is_dropped(tmp_path):
    path = tmp_path / "history.csv"
    rundir.append_history_row(path, {"epoch": 0, "loss": 1.0, "stage": "a"})
    rundir.append_history_row(path, {"epoch": 1, "loss": 0.5, "stage": "a"})
    with open(path, "a") as f:
        f.write("2,0.4")  # the process died mid-row
    assert [r["epoch"] for r in rundir.read_history_rows(path)] == ["0", "1"]


def test_a_new_column_rewrites_the_header_and_keeps_the_rows(tmp_path):
    path = tmp_path / "history.csv"
    rundir.append_history_row(path, {"epoch": 0, "loss": 1.0, "stage": "a"})
    rundir.append_history_row(path, {"epoch": 1, "loss": 0.5, "val_loss": 0.7, "stage": "b"})
    rows = rundir.read_history_rows(path)
    assert list(rows[0]) == ["epoch", "loss", "val_loss", "stage"]
    assert rows[0]["val_loss"] == "" and rows[1]["val_loss"] == "0.7"


def test_stages_continue_the_epoch_axis_and_name_the_stage(tmp_path):
    recipe = recipe_from_dict({
        **TINY,
        "stages": [
            {"name": "head", "trainable": "head", "train": {"epochs": 1}},
            {"name": "finetune", "trainable": "all", "train": {"epochs": 2},
             "optimizer": {"learning_rate": 1e-4}},
        ],
    })
    result = kadvisor.fit(recipe, tmp_path, quiet=True)
    rows = rundir.read_history_rows(result.path / rundir.HISTORY)
    assert [(int(r["epoch"]), r["stage"]) for r in rows] == [(0, "head"), (1, "finetune"), (2, "finetune")]
    assert float(rows[-1]["lr"]) == pytest.approx(1e-4)
    assert result.metrics["epochs"] == 3
