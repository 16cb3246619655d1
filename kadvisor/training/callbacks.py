"""Callbacks kadvisor adds to Keras's own (EarlyStopping, TerminateOnNaN,
ReduceLROnPlateau): a durable history writer, a NaN check that does not stall, and a
check that every epoch trained on something.

The best-model and resume checkpoint is `kadvisor.training.checkpoint.RunCheckpoint`."""

from __future__ import annotations

import os
import time
import warnings

import keras

from kadvisor import rundir
from kadvisor.errors import DataError
from kadvisor.rundir import append_history_row


class HistoryLogger(keras.callbacks.Callback):
    """Writes each epoch's logs plus ``lr``, ``stage`` and ``seconds`` to history.csv.

    Like `keras.callbacks.CSVLogger` (same columns, epochs counted from 0), but each
    row is fsynced before training goes on, a kill mid-write cannot corrupt the file
    (see `kadvisor.rundir.append_history_row`), and the extra columns are added to
    the row only — not to the shared logs, where a string would break the progress bar.

    Args:
        path: The history file (appended to, so stages and resumes continue it).
        stage: Name of the current stage, written in the ``stage`` column.
    """

    def __init__(self, path, stage: str):
        super().__init__()
        self.path, self.stage = path, stage
        self._start, self._lr = 0.0, float("nan")

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        # The rate the epoch starts with: a decay decided at the previous epoch's end
        # (ReduceLROnPlateau) belongs to this epoch, not to the one that triggered it.
        self._lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        for key, value in (logs or {}).items():
            if key not in ("learning_rate", "lr"):  # ReduceLROnPlateau's copy of lr
                row[key] = float(value)
        row["lr"] = self._lr
        row["stage"] = self.stage
        row["seconds"] = round(time.perf_counter() - self._start, 3)
        append_history_row(self.path, row)


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras's `TerminateOnNaN`, checked in Keras's callback thread.

    A callback with a per-batch hook makes Keras convert every step's logs to Python
    numbers on the training thread, which waits for each step to finish (a stall per
    batch, costly on accelerators). Declared ``async_safe``, the same check runs in
    Keras's callback executor while the next steps are dispatched; a NaN still stops
    training within a step or two.
    """

    async_safe = True


def tensorboard_callbacks(recipe, run_dir, stage: str) -> list:
    """Keras's `TensorBoard` callback for one stage, when ``train.tensorboard`` is on.

    Logs go to ``RUN/tensorboard/<stage>/`` (Keras adds ``train/`` and ``validation/``),
    so ``tensorboard --logdir runs`` shows each stage as a run of its own; the steps are
    the run's epoch numbers, which go on across stages. Epoch-level scalars only: no
    graph, histograms, images or profiling, which cost time on every run and which the
    advisor does not read.

    Args:
        recipe: The (stage) recipe.
        run_dir: The run directory.
        stage: The stage name.
    """
    if not recipe.train.tensorboard:
        return []
    log_dir = os.path.join(str(run_dir), rundir.TENSORBOARD, stage.replace(os.sep, "_"))
    return [keras.callbacks.TensorBoard(
        log_dir=log_dir, histogram_freq=0, write_graph=False, write_images=False,
        write_steps_per_second=False, update_freq="epoch", profile_batch=0)]


def higher_is_better(metric: str) -> bool:
    """Infers the direction of a metric from its name (loss/error go down)."""
    name = metric.removeprefix("val_").lower()
    return not any(word in name for word in ("loss", "error", "mae", "mse", "crossentropy", "hinge"))



class RequireBatches(keras.callbacks.Callback):
    """Fails the run when an epoch ends without a training loss: it trained on no batch.

    The folder source drops a file TensorFlow cannot read (`kadvisor.data.sources`), so
    images that vanish or break after the up-front check (a moved folder, an unmounted
    drive) leave an empty epoch; Keras ends it without an error and the run would
    otherwise "finish" having learnt nothing. Runs before the history logger, so no row
    is written for such an epoch.
    """

    def on_train_begin(self, logs=None):
        # kadvisor never sets steps_per_epoch, so Keras's "Your input ran out of data"
        # (advice about .repeat()) only ever means an empty epoch, reported below instead.
        # Set per fit, not at import: pytest and other callers reset the filters.
        warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)

    def on_epoch_end(self, epoch, logs=None):
        if "loss" not in (logs or {}):
            raise DataError(
                f"training failed: epoch {epoch + 1} trained on no batch; likely data.source: its "
                f"images could not be read during training (moved, deleted or unreadable since "
                f"the run started); expected every epoch to read at least one batch")


def training_callbacks(recipe, monitor: str) -> list:
    """The recipe's own Keras callbacks: NaN stop, plateau decay, early stopping.

    Args:
        recipe: The (stage) recipe.
        monitor: The quantity plateau decay and early stopping watch.
    """
    mode = "max" if higher_is_better(monitor) else "min"
    callbacks = [RequireBatches(), TerminateOnNaN()]
    if recipe.schedule.name == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=recipe.schedule.factor,
            patience=recipe.schedule.patience, min_lr=recipe.schedule.min_lr))
    if recipe.train.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=recipe.train.early_stopping))
    return callbacks
