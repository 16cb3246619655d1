"""`fit` and `resume`: train the model a recipe describes into a run directory.

A run directory is usable at every moment: the recipe, data facts and environment are
written before training, epochs are committed by `RunCheckpoint` into ``checkpoint/``,
and ``metrics.json`` says ``"running"`` until the run ends as ``"finished"`` (the
checkpoint is then removed), ``"interrupted"`` (Ctrl-C; resumable) or ``"failed"``. A
run killed outright keeps ``"running"`` and resumes from its last committed epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import keras

from kadvisor import rundir
from kadvisor.errors import InputError, KadvisorError
from kadvisor.plotting import plot_history, read_history_columns
from kadvisor.recipe import Recipe, apply_overrides, load_recipe, recipe_from_dict, to_toml
from kadvisor.training.callbacks import HistoryLogger, tensorboard_callbacks, training_callbacks
from kadvisor.training.checkpoint import (
    CheckpointState,
    RunCheckpoint,
    checkpoint_dir,
    prepare_resume,
    read_state,
    restore_optimizer_and_weights,
    restore_weights,
)
from kadvisor.training.cluster import ClusterError, follow, is_chief, join_cluster
from kadvisor.training.custom_step import evaluate, watching_peers
from kadvisor.training.devices import build_strategy, precision, scale_for_replicas
from kadvisor.training.env import describe_environment
from kadvisor.training.loop import labels_for_loss, total_epochs, train_stages


class Interrupted(KadvisorError):
    """Training was interrupted; the run directory holds everything up to that point."""


class TrainingError(KadvisorError):
    """TensorFlow or Keras failed while setting up or training (the cause is chained)."""


# (test on the exception's type name and text, what to say). TensorFlow's own errors are
# matched by name so that this module does not depend on tf.errors.
_LIKELY_CAUSES = (
    (lambda name, text: name in ("ResourceExhaustedError", "MemoryError") or "OOM when allocating" in text,
     "out of memory: lower data.image_size or train.batch_size"),
    (lambda name, text: "nan" in text.lower().replace(",", " ").split(),
     "non-finite values: lower optimizer.learning_rate"),
    (lambda name, text: "shape" in text.lower() or "incompatible" in text.lower(),
     "a shape mismatch: check data.image_size and data.channels against model.backbone and model.weights"),
)


_TF_FRAMING = ("Graph execution error", "Detected at node", "<stack traces unavailable>")


def _error_line(e: BaseException) -> str:
    """The informative line of an error.

    TensorFlow wraps it: "Graph execution error:", "Detected at node ...", then the
    node's Python stack (indented) or "<stack traces unavailable>", then the message,
    then tab-indented "[[{{node ...}}]]" lines; the message is the first line that is
    neither framing nor indented.
    """
    lines = [line for line in str(e).splitlines() if line.strip()]
    for line in lines:
        if not line[0].isspace() and not line.startswith(_TF_FRAMING):
            return line.strip()[:300]
    return lines[0].strip()[:300] if lines else type(e).__name__


@contextlib.contextmanager
def _one_line(path: Path | None):
    """Turns a non-kadvisor error into one `TrainingError` line naming the likely recipe path.

    The original error stays chained, so ``kadvisor --debug`` shows its full traceback.
    """
    try:
        yield
    except (KadvisorError, KeyboardInterrupt):
        raise
    except Exception as e:
        name = type(e).__name__
        cause = next((hint for test, hint in _LIKELY_CAUSES if test(name, str(e))),
                     "a problem with model.backbone, data.source or data.image_size")
        where = f"; {path} is marked failed" if path is not None else ""
        raise TrainingError(f"training failed ({name}: {_error_line(e)}); likely {cause}{where}; "
                            f"kadvisor --debug fit ... shows the full error") from e


@dataclass
class Run:
    """A finished (or interrupted) training run.

    Attributes:
        path: The run directory.
        recipe: The fully resolved recipe that was trained.
        metrics: Contents of metrics.json.
        model: The best (or last) model, in memory.
    """

    path: Path
    recipe: Recipe
    metrics: dict = field(default_factory=dict)
    model: Any = None


def resolve_recipe(recipe, overrides=(), epochs: int | None = None) -> Recipe:
    """Accepts a Recipe, a TOML path or a dict; applies ``--set`` and ``--epochs``."""
    if isinstance(recipe, (str, os.PathLike)):
        recipe = load_recipe(recipe)
    elif isinstance(recipe, dict):
        recipe = recipe_from_dict(recipe)
    if overrides:
        recipe = apply_overrides(recipe, overrides)
    if epochs is not None:
        recipe = apply_overrides(recipe, [("train.epochs", epochs)], label="--epochs")
        for stage in recipe.stages:  # --epochs is for quick runs: it applies to every stage
            if "train.epochs" in stage.overrides:
                stage.overrides["train.epochs"] = epochs
    return recipe


def fit(recipe, out_dir: str | os.PathLike = "runs", *, overrides=(), epochs: int | None = None,
        quiet: bool = False, printer: Callable[[str], None] | None = None,
        fold: int | None = None, num_folds: int | None = None,
        run_dir: str | os.PathLike | None = None, worker_index: int | None = None) -> Run:
    """Trains a model from a recipe and writes a run directory.

    Args:
        recipe: A `Recipe`, a path to a TOML recipe, or a dict of recipe tables.
        out_dir: Parent of the new run directory.
        overrides: ``path=value`` strings (``--set``).
        epochs: Overrides ``train.epochs`` (of every stage).
        quiet: No progress output.
        printer: Receives one-line messages (the CLI passes ``click.echo``).
        fold, num_folds: Train on one fold of K-fold cross-validation.
        run_dir: Use this (new or empty) directory instead of creating one.
        worker_index: This worker's index in ``distribute.workers`` (strategy
            "multi_worker"; None = 0, the chief, which alone writes the run directory).

    Returns:
        The `Run` (of a non-chief worker: ``path`` None, nothing written).

    Raises:
        KadvisorError: for problems with the recipe, data or model; `Interrupted` on Ctrl-C.
    """
    from kadvisor.data import prepare_data

    recipe = resolve_recipe(recipe, overrides, epochs)
    join_cluster(recipe, worker_index)
    keras.utils.set_random_seed(recipe.seed)
    # Data, strategy and model come first: their errors leave no run directory behind.
    with _one_line(None):
        setup = _set_up(recipe, prepare_data(recipe, batched=False, fold=fold, num_folds=num_folds))
    folds = {"fold": fold, "num_folds": num_folds} if fold is not None else {}
    if not is_chief(setup.strategy):
        return _follow(recipe, setup, folds, quiet, printer)
    if run_dir is None:
        path = rundir.create(out_dir, recipe.name)
    else:
        path = Path(run_dir)
        path.mkdir(parents=True, exist_ok=True)
    rundir.write_text_atomic(path / rundir.RECIPE, to_toml(recipe))
    rundir.write_json_atomic(path / rundir.DATA, setup.data.info.to_json())
    run_id = rundir.write_fingerprint(path, recipe.to_dict(), setup.data.info.to_json())
    return _train(path, recipe, setup, CheckpointState(run_id=run_id), folds, quiet, printer)


def resume(run_dir: str | os.PathLike, *, quiet: bool = False,
           printer: Callable[[str], None] | None = None, worker_index: int | None = None) -> Run:
    """Continues a killed or interrupted run from its last committed epoch.

    After Ctrl-C that is the last finished epoch; after a kill, the last commit
    (``train.checkpoint_every`` seconds apart at most, plus the end of every stage). The
    model weights, optimizer state (moments, step count, learning rate), the stage's
    early-stopping and plateau counters and the stage are restored; history rows after
    the committed epoch are dropped, so history.csv ends with every epoch exactly once.

    Args:
        run_dir: The run directory of the unfinished run.
        quiet: No progress output.
        printer: Receives one-line messages.
        worker_index: As for `fit`; a non-chief worker only reads the run directory.

    Raises:
        InputError: when ``run_dir`` is not an unfinished kadvisor run directory.
    """
    from kadvisor.data import prepare_data

    path = Path(run_dir)
    if not (path / rundir.RECIPE).is_file():
        raise InputError(f"{run_dir}: not a kadvisor run directory (no {rundir.RECIPE}); "
                         f"expected a directory written by kadvisor fit")
    if _read_json(path / rundir.METRICS).get("status") == "finished":
        raise InputError(f"{run_dir}: the run already finished; nothing to resume")
    recipe = load_recipe(path / rundir.RECIPE)
    join_cluster(recipe, worker_index)
    committed = read_state(path)  # a damaged checkpoint is reported before anything changes
    # The recipe, data.json and checkpoint must be the ones this run was created with:
    # checked before the data is loaded, and the data again once it is.
    run_id = (committed.run_id or "") if committed.epoch >= 0 else None
    _check_fingerprint(path, recipe.to_dict(), None, run_id)
    env = _read_json(path / rundir.ENV)
    folds = {k: env[k] for k in ("fold", "num_folds") if env.get(k) is not None}
    keras.utils.set_random_seed(recipe.seed)
    with _one_line(None):
        data = prepare_data(recipe, batched=False, fold=folds.get("fold"), num_folds=folds.get("num_folds"))
    _check_fingerprint(path, recipe.to_dict(), data.info.to_json(), run_id)
    with _one_line(None):
        setup = _set_up(recipe, data)
    if not is_chief(setup.strategy):  # it trains from the chief's weights; writes nothing here
        return _follow(recipe, setup, folds, quiet, printer)
    state = prepare_resume(path)
    state.run_id = rundir.read_json(path / rundir.FINGERPRINT)["run_id"]
    return _train(path, recipe, setup, state, folds, quiet, printer)


def _check_fingerprint(path: Path, recipe: dict, data: dict | None, run_id: str | None) -> None:
    mismatch = rundir.fingerprint_mismatch(path, recipe, data, run_id)
    if mismatch:
        raise InputError(f"{path}: cannot resume: {mismatch}; expected the files this run was created "
                         f"with (start a new run with kadvisor fit instead)")


@dataclass
class _Setup:
    """What training needs before the run directory is touched."""

    strategy: Any
    trained: Recipe  # the recipe with batch size and learning rates scaled for replicas
    data: Any  # batched with the global batch size
    model: Any


def _set_up(recipe: Recipe, data) -> _Setup:
    """Builds the strategy and, inside its scope, the model (errors surface here)."""
    from kadvisor.models import build_model

    strategy = build_strategy(recipe)
    trained = scale_for_replicas(recipe, strategy.num_replicas_in_sync)
    with precision(recipe.train.precision), strategy.scope():
        model = build_model(recipe, data.info.num_classes, tuple(data.info.image_shape))
    return _Setup(strategy, trained, data.batch(trained.train.batch_size), model)


def _follow(recipe: Recipe, setup: _Setup, folds: dict, quiet: bool, printer) -> Run:
    """A non-chief worker: trains from the chief's start and weights; keeps no directory."""
    return follow(setup.strategy, lambda scratch, say: _train(
        scratch, recipe, setup, CheckpointState(), folds, quiet, say), printer)


def _train(path: Path, recipe: Recipe, setup: _Setup, state: CheckpointState, folds: dict,
           quiet: bool, printer) -> Run:
    from kadvisor.data import prepare_data

    say = printer or (lambda message: None)
    strategy, trained, data, model = setup.strategy, setup.trained, setup.data, setup.model
    rundir.write_json_atomic(path / rundir.ENV, {**describe_environment(trained, strategy), **folds})
    _write_status(path, "running", resumed_at=state.next_epoch)
    if state.epoch >= 0:
        say(f"resuming {path} at epoch {state.next_epoch + 1} of {total_epochs(recipe)}")
    elif is_chief(strategy):  # a non-chief worker's directory is a scratch one
        say(f"run directory: {path}")
    if trained is not recipe:
        say(f"{strategy.num_replicas_in_sync} replicas: global batch {trained.train.batch_size}, "
            f"learning rate {trained.optimizer.learning_rate:g} ({recipe.distribute.lr_scaling} scaling)")

    monitor = recipe.train.monitor if data.validation is not None else recipe.train.monitor.removeprefix("val_")
    if monitor != recipe.train.monitor:
        say(f"no validation split: monitoring '{monitor}' instead of '{recipe.train.monitor}'")
    checkpoint = RunCheckpoint(path, monitor, save_best_only=recipe.train.checkpoint, state=state)
    run = Run(path=path, recipe=recipe)
    start = time.perf_counter()
    status = "finished"
    try:
        with precision(recipe.train.precision), strategy.scope():
            if state.epoch >= 0:
                restore_weights(model, path, state)
            try:
                with watching_peers(strategy):  # one line when a worker is lost
                    train_stages(
                        model, trained, data,
                        start=state.next_epoch,
                        callbacks=lambda span: _callbacks(span, path, checkpoint, monitor, say),
                        prepare=lambda r: prepare_data(r, fold=folds.get("fold"), num_folds=folds.get("num_folds")),
                        on_compiled=_optimizer_restorer(path, state),
                        verbose=0 if quiet else (1 if sys.stdout.isatty() else 2),
                        say=say,
                    )
            except KeyboardInterrupt:
                status = "interrupted"
                checkpoint.commit_interrupted()
            if checkpoint.state.best_model is None:  # not one epoch finished
                rundir.save_model_atomic(model, path / rundir.MODEL)
            best = keras.models.load_model(path / rundir.MODEL, safe_mode=True)
            run.model = best
            # The best backbone alone, for `model.weights = "RUN/backbone.weights.h5"` later.
            rundir.save_model_atomic(best.get_layer("backbone"), path / rundir.BACKBONE_WEIGHTS)
            test = _evaluate(best, data, recipe) if status == "finished" else {}
    except BaseException as e:
        if not isinstance(e, KeyboardInterrupt):
            _write_status(path, "failed", error=_error_line(e))
            if isinstance(e, ClusterError) and is_chief(strategy):
                raise ClusterError(f"{e}; to continue, start every worker again, this one with: "
                                   f"kadvisor fit --resume {path}") from None
            with _one_line(path):
                raise
        status, test = "interrupted", {}
    run.metrics = _metrics(path, monitor, checkpoint, test, status, time.perf_counter() - start)
    if state.epoch >= 0:
        run.metrics["resumed_at_epoch"] = state.next_epoch
    rundir.write_json_atomic(path / rundir.METRICS, run.metrics)
    if status == "finished":  # nothing left to resume; model.keras is a link of its own
        shutil.rmtree(checkpoint_dir(path), ignore_errors=True)
    _plot(path)
    if status == "interrupted":
        raise Interrupted(f"interrupted; the finished epochs and the best model are in {path}; "
                          f"continue with: kadvisor fit --resume {path}")
    return run


def _optimizer_restorer(path: Path, state: CheckpointState):
    """Restores the optimizer once, when training resumes inside the committed epoch's stage."""
    if state.epoch < 0:
        return None
    pending = [True]

    def restore(model, span) -> None:
        if pending and span.begin <= state.epoch < span.end and state.next_epoch < span.end:
            restore_optimizer_and_weights(model, path, state)
        pending.clear()

    return restore


def _callbacks(span, path, checkpoint, monitor, say) -> list:
    recipe = span.recipe
    callbacks = training_callbacks(recipe, monitor)
    if recipe.advisor.live:
        from kadvisor.advisor import AdvisorCallback

        callbacks.append(AdvisorCallback(thresholds=dataclasses.asdict(recipe.advisor),
                                         stop_on=recipe.advisor.stop_on, printer=say))
    # The logger, then the checkpoint (its commit point) come last: they see the final logs.
    checkpoint.start_stage(span.begin, span.end, callbacks, every=recipe.train.checkpoint_every)
    callbacks += tensorboard_callbacks(recipe, path, span.stage.name)
    callbacks += [HistoryLogger(path / rundir.HISTORY, span.stage.name), checkpoint]
    return callbacks


def _evaluate(model, data, recipe) -> dict:
    if data.test is None:
        return {}
    test = labels_for_loss(data.test, recipe, data.info.num_classes)
    return {k: float(v) for k, v in evaluate(model, test).items()}


def _read_json(path: Path) -> dict:
    try:
        return rundir.read_json(path)
    except (OSError, ValueError):
        return {}


def _write_status(path: Path, status: str, **facts) -> None:
    """Marks the run's state in metrics.json while it is not finished."""
    rundir.write_json_atomic(path / rundir.METRICS, {"status": status, **facts})


def _metrics(path, monitor, checkpoint, test, status, seconds) -> dict:
    columns = read_history_columns(path / rundir.HISTORY) if (path / rundir.HISTORY).exists() else {}
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    numeric = lambda row: {k: v for k, v in row.items() if isinstance(v, float) and k != "epoch"}  # noqa: E731
    best_epoch = checkpoint.best_epoch
    if best_epoch is None and rows:
        best_epoch = int(rows[-1]["epoch"])
    best_row = next((r for r in rows if int(r.get("epoch", -1)) == best_epoch), rows[-1] if rows else {})
    return {
        "status": status,
        "monitor": monitor,
        "best_epoch": best_epoch,
        "best": numeric(best_row),
        "final": numeric(rows[-1]) if rows else {},
        "test": test,
        "epochs": len(rows),
        "seconds": round(seconds, 2),
    }


def _plot(path) -> None:
    history = path / rundir.HISTORY
    if history.exists():
        plot_history(read_history_columns(history), path / rundir.CURVES, title=path.name)

