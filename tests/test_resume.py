"""`kadvisor fit --resume`: a run killed (even by SIGKILL) continues where it stopped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import kadvisor
from kadvisor import rundir
from kadvisor.cli import main
from kadvisor.recipe import recipe_from_dict
from kadvisor.training.checkpoint import (
    RunCheckpoint,
    checkpoint_dir,
    prepare_resume,
    read_state,
    restore_optimizer_and_weights,
)

STAGED = """
name = "killme"
[data]
source = "sklearn:digits"
image_size = [8, 8]
channels = 1
[model]
width = 4
[train]
batch_size = 32
checkpoint_every = 0    # commit every epoch: the kill lands between commits
[[stages]]
name = "head"
trainable = "head"
"train.epochs" = 2
[[stages]]
name = "finetune"
trainable = "all"
"train.epochs" = 5
"optimizer.learning_rate" = 3e-4
"""


def _start_fit(recipe: Path, out: Path) -> subprocess.Popen:
    # SIGINT back to its default, as in a terminal: a test runner started in the
    # background (`cmd &` in a script) ignores it, children inherit that, and Python
    # then never turns Ctrl-C into KeyboardInterrupt (a clean-clone run saw exit 0).
    return subprocess.Popen(
        [sys.executable, "-m", "kadvisor.cli", "fit", str(recipe), "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_rows(out: Path, rows: int, process, timeout: float = 120) -> Path:
    """The run directory under ``out`` once its history has ``rows`` epochs (the
    moment to kill or interrupt ``process``); fails if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for history in out.glob("*/history.csv"):
            if len(rundir.read_history_rows(history)) >= rows:
                return history.parent
        if process.poll() is not None:
            err = process.stderr.read()
            pytest.fail(f"the run ended early: {(err.decode() if isinstance(err, bytes) else err)[-2000:]}")
        time.sleep(0.02)
    pytest.fail("the run did not reach the epoch to stop it at")


def _epochs_and_stages(run_dir: Path):
    return [(int(r["epoch"]), r["stage"]) for r in rundir.read_history_rows(run_dir / rundir.HISTORY)]


EXPECTED = [(e, "head" if e < 2 else "finetune") for e in range(7)]


def test_sigkill_mid_run_then_resume_gives_every_epoch_once(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(STAGED)
    process = _start_fit(recipe, tmp_path / "runs")
    run_dir = wait_for_rows(tmp_path / "runs", 4, process)  # inside the fine-tuning stage
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((run_dir / rundir.METRICS).read_text())["status"] == "running"
    killed_at = read_state(run_dir).epoch
    assert 2 <= killed_at < 6  # the row of epoch 3 may be written but not yet committed

    result = CliRunner().invoke(main, ["fit", "--resume", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(run_dir)
    assert _epochs_and_stages(run_dir) == EXPECTED
    metrics = json.loads((run_dir / rundir.METRICS).read_text())
    assert metrics["status"] == "finished" and metrics["epochs"] == 7
    assert metrics["resumed_at_epoch"] == killed_at + 1
    assert "accuracy" in metrics["test"]
    model = keras.models.load_model(run_dir / rundir.MODEL, safe_mode=True)
    assert model.output_shape == (None, 10)
    assert not checkpoint_dir(run_dir).exists()  # finished: nothing left to resume


def test_ctrl_c_stops_cleanly_and_leaves_a_resumable_run(tmp_path):
    recipe = tmp_path / "r.toml"
    # 30 fine-tuning epochs, not 5: the signal must land while it trains, however busy
    # the machine is.
    recipe.write_text(STAGED.replace('"train.epochs" = 5', '"train.epochs" = 30'))
    process = _start_fit(recipe, tmp_path / "runs")
    run_dir = wait_for_rows(tmp_path / "runs", 3, process)
    assert process.poll() is None, "the run finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err.decode()[-2000:]
    last_line = err.decode().strip().splitlines()[-1]
    assert last_line.startswith("Error: interrupted") and "--resume" in last_line
    metrics = json.loads((run_dir / rundir.METRICS).read_text())
    assert metrics["status"] == "interrupted"
    assert (run_dir / rundir.CURVES).exists() and (run_dir / rundir.MODEL).exists()
    from kadvisor.training.fit import resume

    run = resume(run_dir, quiet=True)
    assert run.metrics["status"] == "finished"
    assert _epochs_and_stages(run_dir) == [(e, "head" if e < 2 else "finetune") for e in range(32)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    recipe = recipe_from_dict({
        "name": "done", "data": {"source": "sklearn:digits", "image_size": [8, 8], "channels": 1},
        "model": {"width": 4}, "train": {"epochs": 3, "batch_size": 64},
    })
    return kadvisor.fit(recipe, tmp_path_factory.mktemp("runs"), quiet=True)


class _CtrlC(keras.callbacks.Callback):
    """Ctrl-C as the given epoch starts."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


# A 5-epoch digits run committed every epoch, interrupted by Ctrl-C as epoch 3 starts.
CUT = {"name": "cut", "data": {"source": "sklearn:digits", "image_size": [8, 8], "channels": 1},
       "model": {"width": 4}, "train": {"epochs": 5, "batch_size": 64, "checkpoint_every": 0}}


def interrupted_run(out: Path, *callbacks) -> Path:
    """Fits `CUT` (with ``callbacks`` added) until the Ctrl-C in epoch 3; its run directory."""
    import kadvisor.training.fit as fit_module

    original = fit_module._callbacks
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit_module, "_callbacks", lambda *a, **k: [*original(*a, **k), *callbacks, _CtrlC(3)])
        with pytest.raises(fit_module.Interrupted):
            kadvisor.fit(recipe_from_dict(CUT), out, quiet=True)
    (run_dir,) = Path(out).iterdir()
    return run_dir


def test_rollback_to_the_last_commit(tmp_path):
    """A kill between the history row, the checkpoint and the commit is undone."""
    run_dir = interrupted_run(tmp_path)
    state = read_state(run_dir)
    assert state.epoch == 2 and json.loads((run_dir / rundir.METRICS).read_text())["status"] == "interrupted"
    rundir.append_history_row(run_dir / rundir.HISTORY, {"epoch": 3, "loss": 0.1, "stage": "train"})
    (run_dir / rundir.MODEL).unlink()  # a hard link of the committed best model:
    (run_dir / rundir.MODEL).write_bytes(b"half a zip file")  # replace it, as a publish would
    (checkpoint_dir(run_dir) / "epoch-3.weights.h5").write_bytes(b"uncommitted")
    prepare_resume(run_dir)
    assert [r["epoch"] for r in rundir.read_history_rows(run_dir / rundir.HISTORY)] == ["0", "1", "2"]
    assert sorted(p.name for p in checkpoint_dir(run_dir).iterdir()) == sorted(
        {"state.json", state.weights, state.best_model})
    keras.models.load_model(run_dir / rundir.MODEL, safe_mode=True)


def test_optimizer_state_is_restored(tmp_path):
    def compiled():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        return model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32)
    model = compiled()
    checkpoint = RunCheckpoint(tmp_path, "loss")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[checkpoint])
    fresh = compiled()
    restore_optimizer_and_weights(fresh, tmp_path, read_state(tmp_path))
    assert int(fresh.optimizer.iterations) == 8
    for a, b in zip(model.optimizer.variables, fresh.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_resuming_a_finished_run_is_refused(finished):
    result = CliRunner().invoke(main, ["fit", "--resume", str(finished.path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {finished.path}: the run already finished; nothing to resume"


def test_resume_needs_a_run_directory(tmp_path):
    result = CliRunner().invoke(main, ["fit", "--resume", str(tmp_path)])
    assert result.exit_code == 1 and "not a kadvisor run directory" in result.output


def test_resume_with_a_recipe_is_a_usage_error(tmp_path):
    assert CliRunner().invoke(main, ["fit", "r.toml", "--resume", str(tmp_path)]).exit_code == 2


class _Script(keras.callbacks.Callback):
    """Before the checkpoint: advances a fake clock 10 s per epoch, sets val_loss from a
    script and records each epoch's weights."""

    def __init__(self, losses):
        super().__init__()
        self.losses, self.now, self.weights = losses, [0.0], []

    def on_epoch_begin(self, epoch, logs=None):
        self.now[0] += 10.0

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.losses[epoch]
        self.weights.append(self.model.get_weights())


class _Observer(keras.callbacks.Callback):
    """After the checkpoint: the committed epoch and the weights training goes on from."""

    def __init__(self, run_dir):
        super().__init__()
        self.run_dir, self.committed, self.weights = run_dir, [], []

    def on_epoch_end(self, epoch, logs=None):
        self.committed.append(read_state(self.run_dir).epoch)
        self.weights.append(self.model.get_weights())


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_commits_every_interval_and_at_the_end_keeping_the_best_epoch_in_between(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32)
    # Best epochs: 1 (not committed on its own, the commit at epoch 2 must save it), then 5.
    script = _Script([5.0, 3.0, 4.0, 4.0, 4.0, 2.0, 6.0])
    checkpoint = RunCheckpoint(tmp_path, "val_loss", every=25, clock=lambda: script.now[0])
    observer = _Observer(tmp_path)
    model.fit(x, y, epochs=7, batch_size=8, verbose=0, callbacks=[script, checkpoint, observer])

    # 10 s epochs, 25 s interval: commits at epochs 2 (30 s) and 5 (60 s), then at the end.
    assert observer.committed == [-1, -1, 2, 2, 2, 5, 5]
    assert read_state(tmp_path).epoch == 6 and read_state(tmp_path).best_epoch == 5
    # Saving epoch 1's weights at epoch 2 did not disturb training.
    assert all(_same(seen, done) for seen, done in zip(observer.weights, script.weights))
    assert not (checkpoint_dir(tmp_path) / "best-1.keras").exists()  # superseded by epoch 5
    final = keras.models.load_model(tmp_path / rundir.MODEL, safe_mode=True)
    assert _same(final.get_weights(), script.weights[5])
    assert not _same(final.get_weights(), script.weights[6])


def test_a_commit_between_bests_saves_the_earlier_best_epoch(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32)
    script = _Script([5.0, 3.0, 4.0])
    checkpoint = RunCheckpoint(tmp_path, "val_loss", every=25, clock=lambda: script.now[0])
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[script, checkpoint])
    state = read_state(tmp_path)
    assert (state.epoch, state.best_epoch, state.best_model) == (2, 1, "best-1.keras")
    best = keras.models.load_model(tmp_path / rundir.MODEL, safe_mode=True)
    assert _same(best.get_weights(), script.weights[1]) and not _same(best.get_weights(), script.weights[2])
    restored = keras.models.clone_model(model)
    restored.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    restore_optimizer_and_weights(restored, tmp_path, state)
    assert _same(restored.get_weights(), script.weights[2])  # resume from the last epoch


def test_a_resumed_stage_keeps_its_early_stopping_and_plateau_counters(tmp_path):
    """Killed two epochs into a three-epoch patience, the resumed run stops one epoch later."""
    def stage(state, losses, epochs, initial_epoch):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 3, 16)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)
        plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=10, factor=0.5)
        checkpoint = RunCheckpoint(tmp_path, "val_loss", state=state)
        checkpoint.start_stage(0, 10, [stop, plateau])
        if state is not None:
            restore_optimizer_and_weights(model, tmp_path, state)
        history = model.fit(x, y, epochs=epochs, initial_epoch=initial_epoch, batch_size=8, verbose=0,
                            callbacks=[_Script(losses), stop, plateau, checkpoint])
        return stop, plateau, history

    losses = [1.0] + [2.0] * 9  # best at epoch 0; patience 3 stops after epoch 3
    stop, plateau, _ = stage(None, losses, epochs=3, initial_epoch=0)  # "killed" after epoch 2
    state = read_state(tmp_path)
    assert state.counters["EarlyStopping"] == {"wait": 2, "best": 1.0, "best_epoch": 0}
    assert state.counters["ReduceLROnPlateau"]["wait"] == 2
    stop, plateau, history = stage(state, losses, epochs=10, initial_epoch=3)
    assert history.epoch == [3]  # without the counters it would train epochs 3-6
    assert stop.best == 1.0 and plateau.wait == 3


def test_ctrl_c_between_commits_commits_the_finished_epochs(tmp_path, monkeypatch):
    """With the default 30 s interval nothing was committed yet; Ctrl-C in epoch 3 keeps 0-2."""
    import kadvisor.training.fit as fit_module

    original = fit_module._callbacks
    with monkeypatch.context() as patch:
        patch.setattr(fit_module, "_callbacks", lambda *a, **k: [*original(*a, **k), _CtrlC(3)])
        recipe = recipe_from_dict({
            "name": "cut", "data": {"source": "sklearn:digits", "image_size": [8, 8], "channels": 1},
            "model": {"width": 4}, "train": {"epochs": 5, "batch_size": 64},
        })
        assert recipe.train.checkpoint_every == 30
        with pytest.raises(fit_module.Interrupted):
            kadvisor.fit(recipe, tmp_path, quiet=True)
    (run_dir,) = tmp_path.iterdir()
    state = read_state(run_dir)
    assert state.epoch == 2 and state.weights == "epoch-2.weights.h5"
    metrics = json.loads((run_dir / rundir.METRICS).read_text())
    assert metrics["status"] == "interrupted" and metrics["best_epoch"] == state.best_epoch
    run = kadvisor.training.fit.resume(run_dir, quiet=True)
    assert run.metrics["status"] == "finished" and run.metrics["resumed_at_epoch"] == 3
    assert [e for e, _ in _epochs_and_stages(run_dir)] == [0, 1, 2, 3, 4]


class _Snapshot(keras.callbacks.Callback):
    """Records the weights and optimizer step count at one point of training."""

    def __init__(self, at_epoch_end: int | None = None):
        super().__init__()
        self.at_epoch_end, self.weights, self.iterations = at_epoch_end, None, None

    def _take(self):
        self.weights = [np.array(w) for w in self.model.get_weights()]
        self.iterations = int(self.model.optimizer.iterations)

    def on_train_begin(self, logs=None):
        if self.at_epoch_end is None:
            self._take()

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch_end:
            self._take()


def test_resume_starts_from_the_committed_weights_and_optimizer_state(tmp_path, monkeypatch):
    """Compared with what the interrupted process held at its last committed epoch, not
    with the checkpoint files: a resume that skipped the restore would start from fresh
    weights and step 0 and fail here."""
    import kadvisor.training.fit as fit_module

    committed = _Snapshot(at_epoch_end=2)
    run_dir = interrupted_run(tmp_path, committed)
    assert read_state(run_dir).epoch == 2 and committed.iterations > 0
    original = fit_module._callbacks
    resumed = _Snapshot()
    with monkeypatch.context() as patch:
        patch.setattr(fit_module, "_callbacks", lambda *a, **k: [*original(*a, **k), resumed])
        kadvisor.training.fit.resume(run_dir, quiet=True)
    assert resumed.iterations == committed.iterations
    assert len(resumed.weights) == len(committed.weights)
    for now, then in zip(resumed.weights, committed.weights):
        np.testing.assert_array_equal(now, then)
