"""Callbacks kadvisor adds to Keras's own (EarlyStopping, TerminateOnNaN,
ReduceLROnPlateau): a durable history writer and a NaN check that does not stall.

The best-model and resume checkpoint is `kadvisor.training.checkpoint.RunCheckpoint`."""

from __future__ import annotations

import time

import keras

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


def higher_is_better(metric: str) -> bool:
    """Infers the direction of a metric from its name (loss/error go down)."""
    name = metric.removeprefix("val_").lower()
    return not any(word in name for word in ("loss", "error", "mae", "mse", "crossentropy", "hinge"))


def training_callbacks(recipe, monitor: str) -> list:
    """The recipe's own Keras callbacks: NaN stop, plateau decay, early stopping.

    Args:
        recipe: The (stage) recipe.
        monitor: The quantity plateau decay and early stopping watch.
    """
    mode = "max" if higher_is_better(monitor) else "min"
    callbacks = [TerminateOnNaN()]
    if recipe.schedule.name == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=recipe.schedule.factor,
            patience=recipe.schedule.patience, min_lr=recipe.schedule.min_lr))
    if recipe.train.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=recipe.train.early_stopping))
    return callbacks
