"""Readers on real files: TensorBoard events written here by Keras and by tensorboardX,
public Lightning / Hugging Face / MLflow logs (tests/data, provenance in its README),
and one real digits run read from history.csv and from its TensorBoard events."""

import os
import shutil

import numpy as np
import pytest

import kadvisor
from kadvisor import rundir
from kadvisor.advisor import diagnose
from kadvisor.advisor.command import diagnose_command
from kadvisor.advisor.inputs import read_target
from kadvisor.errors import InputError
from kadvisor.recipe import recipe_from_dict

DATA = os.path.join(os.path.dirname(__file__), "data")
TINY = {
    "name": "tb",
    "data": {"source": "sklearn:digits", "image_size": [8, 8], "channels": 1},
    "model": {"width": 4},
    "optimizer": {"learning_rate": 3e-3},
    "train": {"epochs": 3, "batch_size": 64},
    "stages": [
        {"name": "head", "trainable": "all", "train": {"epochs": 3}},
        {"name": "more", "trainable": "all", "train": {"epochs": 4}, "optimizer": {"learning_rate": 1e-3}},
    ],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real two-stage digits fit (7 epochs) with TensorBoard logs on (the default)."""
    return kadvisor.fit(recipe_from_dict(TINY), tmp_path_factory.mktemp("runs"), quiet=True).path


def _labels(d):
    return [(f.rule, f.severity, round(f.confidence, 2)) for f in d.findings]


def test_fit_writes_one_tensorboard_run_per_stage(run):
    stages = sorted(os.listdir(run / rundir.TENSORBOARD))
    assert stages == ["head", "more"]
    assert sorted(os.listdir(run / rundir.TENSORBOARD / "head")) == ["train", "validation"]


def test_history_csv_and_tensorboard_events_give_the_same_findings(run):
    from_csv = read_target(str(run / rundir.HISTORY))
    from_events = read_target(str(run / rundir.TENSORBOARD))
    assert from_events.format == "tensorboard" and from_events.length == from_csv.length == 7
    # Keras's duplicate `evaluation_*_vs_iterations` tags are not read as more epochs.
    assert not [name for name in from_events.columns if "evaluation" in name], from_events.columns
    for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(from_events.columns[name], from_csv.columns[name], rtol=1e-6)
    assert from_events.text["stage"] == from_csv.text["stage"]
    np.testing.assert_array_equal(from_events.epochs, from_csv.epochs)
    assert _labels(diagnose(from_events)) == _labels(diagnose(from_csv))
    # With the run's context (recipe, data) too: the run directory read either way.
    both = [diagnose(read_target(str(run))), diagnose(read_target(str(run), fmt="tensorboard"))]
    assert _labels(both[0]) == _labels(both[1])


def test_events_read_back_as_tensorboard_shows_them(run):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(run.parent))  # what `tensorboard --logdir runs` does
    mux.Reload()
    name = f"{run.name}/tensorboard/more/validation"
    assert name in mux.Runs()
    events = mux.Tensors(name, "epoch_loss")
    history = read_target(str(run / rundir.HISTORY))
    assert [e.step for e in events] == [3, 4, 5, 6]
    got = [float(np.asarray(e.tensor_proto.float_val or np.frombuffer(e.tensor_proto.tensor_content, "<f4"))[0])
           for e in events]
    np.testing.assert_allclose(got, history.columns["val_loss"][3:], rtol=1e-6)


def test_diagnose_writes_the_findings_as_a_tensorboard_text_summary(run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    out = []
    diagnose_command(str(copy), echo=out.append)
    acc = EventAccumulator(str(copy / rundir.TENSORBOARD / "diagnosis"))
    acc.Reload()
    (event,) = acc.Tensors("diagnosis")
    text = event.tensor_proto.string_val[0].decode()
    assert event.step == 6 and str(copy) in text and "epochs" in text
    assert acc.summary_metadata["diagnosis"].plugin_data.plugin_name == "text"
    diagnose_command(str(copy), echo=out.append)  # again: replaced, not added
    assert len(os.listdir(copy / rundir.TENSORBOARD / "diagnosis")) == 1
    # The text summary is not mistaken for a stage by the reader.
    assert read_target(str(copy / rundir.TENSORBOARD)).text["stage"][-1] == "more"


def test_tensorboardx_pytorch_style_tags_per_step_training_loss(tmp_path):
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "exp"))
    rng = np.random.default_rng(0)
    for epoch in range(6):
        for batch in range(10):
            step = epoch * 10 + batch + 1
            writer.add_scalar("Loss/train", 2.0 / (1 + step / 10) + rng.normal(0, 0.01), step)
        writer.add_scalar("Loss/val", 2.2 / (1 + epoch), (epoch + 1) * 10)
        writer.add_scalar("Accuracy/val", 0.5 + epoch / 20, (epoch + 1) * 10)
    writer.close()
    run = read_target(str(tmp_path / "exp"))
    assert run.length == 6 and set(run.columns) == {"loss", "val_loss", "val_accuracy"}
    train = [2.0 / (1 + s / 10) for s in range(1, 11)]
    assert run.columns["loss"][0] == pytest.approx(np.mean(train), abs=0.01)  # mean over the epoch's steps
    notes = " ".join(run.notes)
    assert "Loss/train as loss" in notes and "reduced to the 6 validation points" in notes
    np.testing.assert_allclose(run.columns["val_loss"], [2.2 / (1 + e) for e in range(6)], rtol=1e-6)
    forced = read_target(str(tmp_path / "exp"), columns="loss=Loss/train,val_loss=Accuracy/val")
    np.testing.assert_allclose(forced.columns["val_loss"], [0.5 + e / 20 for e in range(6)], rtol=1e-6)


def test_truncated_event_file_reads_the_complete_records(tmp_path):
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "exp"))
    for step in range(8):
        writer.add_scalar("train/loss", 1.0 / (step + 1), step)
        writer.add_scalar("val/loss", 1.1 / (step + 1), step)
    writer.close()
    (path,) = [os.path.join(tmp_path / "exp", f) for f in os.listdir(tmp_path / "exp")]
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-7])
    run = read_target(str(tmp_path / "exp"))
    assert run.length == 8 and np.isnan(run.columns["val_loss"][-1]) is np.False_ or run.length == 7
    assert any("truncated" in n for n in run.notes)
    open(path, "wb").write(data[:20])
    with pytest.raises(InputError, match=r"no readable TensorBoard record in 1 event file\(s\) \(corrupt"):
        read_target(str(tmp_path / "exp"))
    open(path, "wb").write(np.random.default_rng(0).bytes(100))  # named like an event file, is not one
    with pytest.raises(InputError, match=r"no readable TensorBoard record"):
        read_target(str(tmp_path / "exp"))


def test_a_folder_of_run_directories_points_at_a_run_directory(run, tmp_path):
    """`diagnose runs/` finds every run's events; it names a run directory to diagnose
    (which knows the recipe), not the event folder inside it."""
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        shutil.copytree(run, runs / name)
    with pytest.raises(InputError, match=r"4 TensorBoard runs whose steps overlap .*; diagnose one of them, "
                                         r"e\.g\. kadvisor diagnose .*runs/b$"):
        read_target(str(runs))


def test_event_files_without_scalars_say_so(tmp_path):
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "exp")) as writer:
        writer.add_text("notes", "no curves here", 0)
    with pytest.raises(InputError, match=r"event files hold no scalars"):
        read_target(str(tmp_path / "exp"))


def test_a_hugging_face_value_that_is_no_number_is_noted(tmp_path):
    (tmp_path / "trainer_state.json").write_text(
        '{"log_history": [' + ",".join(f'{{"loss": {1 / (s + 1)}, "step": {s}}}' for s in range(1, 12))
        + ', {"loss": "nan?", "step": 12}]}')
    run = read_target(str(tmp_path))
    assert run.length == 11
    assert "values that are not numbers were left out (loss)" in run.notes
    assert not any("epochs )" in n for n in run.notes)


def test_overlapping_tensorboard_runs_ask_which_one(tmp_path):
    from tensorboardX import SummaryWriter

    for name in ("a", "b"):
        writer = SummaryWriter(str(tmp_path / name))
        for step in range(4):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.close()
    with pytest.raises(InputError, match=r"2 TensorBoard runs whose steps overlap \(a, b\); diagnose one"):
        read_target(str(tmp_path))


def test_real_lightning_metrics_csv():
    run = read_target(os.path.join(DATA, "lightning", "metrics.csv"))
    assert run.format == "lightning" and run.length == 5
    assert run.columns["val_loss"][0] == pytest.approx(0.07106363773345947)
    assert run.columns["val_accuracy"][-1] == pytest.approx(0.9868000149726868)
    assert "test_loss" not in run.columns and "val_loss" in run.columns
    assert any("validation values only" in n for n in run.notes)


def test_real_huggingface_trainer_state():
    run = read_target(os.path.join(DATA, "huggingface"))
    assert run.format == "huggingface" and run.length == 6
    np.testing.assert_allclose(run.columns["val_loss"][[0, -1]], [0.4737350344657898, 0.05441011115908623])
    first_window = [0.2579, 0.1457, 0.0975, 0.0565, 0.0579, 0.0302, 0.0039, 0.0441, 0.0414, 0.0443]
    assert run.columns["loss"][0] == pytest.approx(np.mean(first_window))
    assert "val_runtime" not in run.columns and "val_f1" in run.columns


def test_real_mlflow_store_and_a_multi_step_run(tmp_path):
    run = read_target(os.path.join(DATA, "mlflow", "mlruns"))
    assert run.format == "mlflow" and run.length == 1
    assert run.columns["loss"][0] == pytest.approx(3.2727866172790527)
    store = tmp_path / "mlruns" / "1"
    for run_id in ("r1", "r2"):
        metrics = store / run_id / "metrics"
        metrics.mkdir(parents=True)
        (store / run_id / "meta.yaml").write_text(f"run_id: {run_id}\n")
        (metrics / "loss").write_text("".join(f"1700000000000 {1 / (s + 1)} {s}\n" for s in range(5)))
        (metrics / "val_loss").write_text("".join(f"1700000000000 {1.2 / (s + 1)} {s}\n" for s in range(5)))
    with pytest.raises(InputError, match="2 MLflow runs"):
        read_target(str(tmp_path / "mlruns"))
    one = read_target(str(store / "r2"))
    assert one.length == 5 and list(one.epochs) == [0, 1, 2, 3, 4]


def test_format_in_forces_a_reader_and_names_the_choices(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text('{"loss": [1, 0.5]}')
    assert read_target(str(path), fmt="json").format == "json"
    with pytest.raises(InputError, match="unknown log format 'jsn' — did you mean 'json'"):
        read_target(str(path), fmt="jsn")


def test_cli_shows_how_the_log_was_read(tmp_path):
    from click.testing import CliRunner

    from kadvisor.cli import main

    path = tmp_path / "h.csv"
    path.write_text("epoch,Train/Loss,Valid/Loss\n" + "".join(f"{e},{1 / (e + 1)},{1.1 / (e + 1)}\n" for e in range(6)))
    result = CliRunner().invoke(main, ["diagnose", str(path), "--format", "json", "--columns", "loss=Train/Loss"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output)
    assert report["input"]["format"] == "csv"
    assert any("Train/Loss as loss (--columns)" in n and "Valid/Loss as val_loss" in n for n in report["input"]["notes"])
