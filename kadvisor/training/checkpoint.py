"""Resumable runs: atomic commits of weights, optimizer state and best model.

A commit writes, in this order:

1. ``checkpoint/epoch-E.weights.h5`` — model weights and optimizer state (moments,
   iteration count, learning rate) after epoch E, to a temporary file then renamed;
2. ``checkpoint/best-B.keras`` when a better epoch B (by ``train.monitor``) finished since
   the last commit — its weights were kept in memory at the end of epoch B;
3. ``checkpoint/state.json`` — the commit point: which epoch is done, where to resume,
   the best value so far, the stage's EarlyStopping/ReduceLROnPlateau counters and the
   two files above;
4. ``model.keras`` — a hard link to the committed best file, renamed into place;
5. removal of files the new state no longer names.

`RunCheckpoint` commits at the first epoch end ``train.checkpoint_every`` seconds after
the previous commit, at the end of every stage, and on Ctrl-C (from an in-memory copy of
the last finished epoch). Saving costs a fixed time (0.3 s for the digits CNN, against
2 s epochs), so committing every epoch would slow short epochs by 10-15% while a kill
would save only seconds of work; with long epochs the interval passes every epoch and
each one is committed. 0 commits every epoch. A best model saved at a later commit
carries that commit's optimizer state (the weights are the best epoch's).

history.csv gets a row at every epoch end. A process killed anywhere leaves the last
committed state intact; `prepare_resume` rolls the run directory back to it (drops
history rows after the committed epoch, re-publishes the committed best model, removes
uncommitted files), so a resumed run ends with every epoch exactly once.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from kadvisor import rundir
from kadvisor.errors import InputError
from kadvisor.training.callbacks import higher_is_better

STATE = "state.json"

# Keras callbacks whose counters decide when a stage stops early or its learning rate
# drops. Their on_train_begin resets the counters, so a resumed stage sets them again.
COUNTERS = {
    "EarlyStopping": ("wait", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


@dataclass
class CheckpointState:
    """What the last committed epoch left behind.

    Attributes:
        epoch: The last finished epoch (0-based); -1 before the first.
        next_epoch: Where training resumes: ``epoch + 1``, or the start of the next stage
            when early stopping ended the stage.
        best: Best monitored value so far (None until a finite one is seen).
        best_epoch: Its epoch.
        weights: File name (in ``checkpoint/``) of the weights + optimizer state.
        best_model: File name (in ``checkpoint/``) of the best model.
        counters: The stage's EarlyStopping / ReduceLROnPlateau counters after ``epoch``.
        run_id: The run's id from fingerprint.json: ties the checkpoint to its run.
    """

    epoch: int = -1
    next_epoch: int = 0
    best: float | None = None
    best_epoch: int | None = None
    weights: str | None = None
    best_model: str | None = None
    counters: dict = field(default_factory=dict)
    run_id: str | None = None


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    """The run directory's checkpoint folder."""
    return Path(run_dir) / rundir.CHECKPOINT


def read_state(run_dir: str | os.PathLike) -> CheckpointState:
    """The committed state, or a fresh one when no epoch was committed.

    Raises:
        InputError: when ``state.json`` exists but is not a checkpoint state.
    """
    path = checkpoint_dir(run_dir) / STATE
    if not path.exists():
        return CheckpointState()
    try:
        return CheckpointState(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as e:
        raise InputError(f"{path}: not a kadvisor checkpoint state ({e}); expected the JSON that "
                         f"kadvisor fit commits, so this run cannot be resumed") from None


class RunCheckpoint(keras.callbacks.Callback):
    """Commits finished epochs so that a killed run can resume (see module doc).

    One instance serves every stage, so "best" means best over the whole run.

    Args:
        run_dir: The run directory.
        monitor: Quantity deciding the best model; direction from its name.
        save_best_only: False publishes the last epoch's model as ``model.keras``.
        state: The state to continue from (`read_state` when resuming).
        every: Seconds between commits (0 = every epoch); stage ends always commit.
        clock: Returns seconds (monotonic); replaceable in tests.
    """

    def __init__(self, run_dir, monitor: str, save_best_only: bool = True,
                 state: CheckpointState | None = None, every: float = 0.0, clock=time.monotonic):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.folder = checkpoint_dir(run_dir)
        self.monitor, self.save_best_only = monitor, save_best_only
        self.maximize = higher_is_better(monitor)
        self.state = state or CheckpointState()
        self.every, self.clock = every, clock
        self.stage_begin = self.stage_end = None  # set per stage by `start_stage`
        self.counted: list = []  # the stage's callbacks named in COUNTERS
        self._restore_counters = self.state.epoch >= 0
        self._pending: CheckpointState | None = None  # the last finished epoch, if not committed
        self._pending_variables: tuple | None = None  # (epoch, weights, optimizer variables)
        self._best_weights: list | None = None  # of an uncommitted best epoch
        self._last_commit = clock()

    @property
    def best_epoch(self) -> int | None:
        """The committed best epoch (the one ``model.keras`` holds)."""
        return self.state.best_epoch

    def better(self, value, best) -> bool:
        """True when ``value`` is finite and better than ``best`` (None: nothing yet)."""
        if value is None or not math.isfinite(value):
            return False
        return best is None or (value > best if self.maximize else value < best)

    def start_stage(self, begin: int, end: int, callbacks: list, every: float | None = None) -> None:
        """Tells the checkpoint the stage's epoch range, its other callbacks and, if
        given, its commit interval."""
        self.stage_begin, self.stage_end = begin, end
        self.counted = [c for c in callbacks if type(c).__name__ in COUNTERS]
        if every is not None:
            self.every = every

    def on_train_begin(self, logs=None):
        # Runs after the counted callbacks reset themselves (the checkpoint comes last).
        state = self.state
        if self._restore_counters and self.stage_begin is not None \
                and self.stage_begin <= state.epoch < state.next_epoch < self.stage_end:
            for callback in self.counted:
                for name, value in state.counters.get(type(callback).__name__, {}).items():
                    if value is not None:  # None (or inf/NaN, saved as null): the reset value stands
                        setattr(callback, name, value)
        self._restore_counters = False

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        state = CheckpointState(**asdict(self._pending or self.state))
        state.epoch, state.next_epoch = epoch, epoch + 1
        state.counters = {type(c).__name__: _counters_of(c) for c in self.counted}
        if self.better(value, state.best):
            state.best, state.best_epoch = float(value), epoch
            state.best_model = f"best-{epoch}.keras"
        elif not self.save_best_only or state.best_model is None:
            state.best_model = f"best-{epoch}.keras"
        self._pending = state
        if self.clock() - self._last_commit >= self.every:
            self._commit_pending()
            return
        # Training moves on from these: keep what a later commit or a Ctrl-C needs.
        weights = self.model.get_weights()
        self._pending_variables = (epoch, weights, [v.numpy() for v in self.model.optimizer.variables])
        if self.save_best_only and state.best_model == f"best-{epoch}.keras":
            self._best_weights = weights

    def commit_interrupted(self) -> None:
        """Commits the last finished epoch after Ctrl-C stopped training inside the next.

        Keras calls no ``on_train_end`` then; the model holds a half-trained epoch, so
        the finished epoch's weights and optimizer state are put back first.
        """
        if self._pending is None or self._pending_variables is None \
                or self._pending_variables[0] != self._pending.epoch:  # cut short while keeping them
            return
        _, weights, optimizer_variables = self._pending_variables
        self.model.set_weights(weights)
        for variable, value in zip(self.model.optimizer.variables, optimizer_variables):
            variable.assign(value)
        self._commit_pending()

    def on_train_end(self, logs=None):
        if self._pending is not None:
            self._commit_pending()
        # Early stopping ended the stage: a resume must start the next stage.
        if self.model.stop_training and self.stage_end is not None and self.state.epoch >= 0:
            self.commit(CheckpointState(**{**asdict(self.state), "next_epoch": self.stage_end}))

    def _commit_pending(self) -> None:
        """Writes the pending epoch's files and commits it."""
        state, self._pending = self._pending, None
        self.folder.mkdir(exist_ok=True)
        state.weights = f"epoch-{state.epoch}.weights.h5"
        rundir.save_model_atomic(self.model, self.folder / state.weights)
        if state.best_model != self.state.best_model:
            if state.best_model == f"best-{state.epoch}.keras":
                rundir.save_model_atomic(self.model, self.folder / state.best_model)
            else:  # an earlier uncommitted epoch was the best: save its weights, carry on
                current = self.model.get_weights()
                self.model.set_weights(self._best_weights)
                rundir.save_model_atomic(self.model, self.folder / state.best_model)
                self.model.set_weights(current)
        self._best_weights = self._pending_variables = None
        self.commit(state)
        self._last_commit = self.clock()

    def commit(self, state: CheckpointState) -> None:
        """Makes ``state`` the committed one, then publishes and tidies up after it."""
        rundir.write_json_atomic(self.folder / STATE, asdict(state))
        self.state = state
        publish(self.run_dir, state)


def _counters_of(callback) -> dict:
    """The callback's COUNTERS as JSON values (numpy numbers made plain)."""
    values = {}
    for name in COUNTERS[type(callback).__name__]:
        value = getattr(callback, name, None)
        values[name] = value if value is None else int(value) if isinstance(value, numbers.Integral) else float(value)
    return values


def publish(run_dir: Path, state: CheckpointState) -> None:
    """Points ``model.keras`` at the committed best model; removes uncommitted files."""
    folder = checkpoint_dir(run_dir)
    if state.best_model:
        link_atomic(folder / state.best_model, run_dir / rundir.MODEL)
    keep = {STATE, state.weights, state.best_model}
    for path in folder.iterdir():
        if path.name not in keep:
            path.unlink(missing_ok=True)


def link_atomic(source: Path, target: Path) -> None:
    """Makes ``target`` the same file as ``source`` (hard link; copy where links fail)."""
    tmp = target.with_name(f".{target.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # e.g. a file system without hard links
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def prepare_resume(run_dir: str | os.PathLike) -> CheckpointState:
    """Rolls a run directory back to its last committed epoch and returns that state.

    History rows after the committed epoch (written just before a kill) are dropped,
    ``model.keras`` is re-published from the committed best model, and uncommitted
    checkpoint files are removed.
    """
    run_dir = Path(run_dir)
    state = read_state(run_dir)
    history = run_dir / rundir.HISTORY
    rows = [r for r in rundir.read_history_rows(history) if int(float(r["epoch"])) <= state.epoch]
    if rows:
        rundir.write_history_rows(history, rows)
    else:
        history.unlink(missing_ok=True)
    if checkpoint_dir(run_dir).exists():
        publish(run_dir, state)
    return state


def restore_optimizer_and_weights(model, run_dir: str | os.PathLike, state: CheckpointState) -> None:
    """Loads the committed weights and optimizer state into a compiled model.

    The optimizer is built first unless it is (every worker of a cluster builds it before
    this; building it again would add variables, e.g. LossScaleOptimizer's counters).
    """
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(checkpoint_dir(run_dir) / state.weights)


def restore_weights(model, run_dir: str | os.PathLike, state: CheckpointState) -> None:
    """Loads the committed layer weights only (a new stage starts a new optimizer)."""
    model.load_weights(checkpoint_dir(run_dir) / state.weights)

