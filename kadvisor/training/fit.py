"""`fit`: train the model a recipe describes, stage by stage, into a run directory."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import keras

from kadvisor import rundir
from kadvisor.errors import KadvisorError
from kadvisor.plotting import plot_history, read_history_columns
from kadvisor.recipe import Recipe, apply_overrides, load_recipe, recipe_from_dict, to_toml
from kadvisor.training.callbacks import BestModelSaver, HistoryLogger, TerminateOnNaN, higher_is_better
from kadvisor.training.devices import build_strategy, precision
from kadvisor.training.env import describe_environment
from kadvisor.training.loop import labels_for_loss, train_stages


class Interrupted(KadvisorError):
    """Training was interrupted; the run directory holds everything up to that point."""


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
        fold: int | None = None, num_folds: int | None = None, run_dir: str | os.PathLike | None = None) -> Run:
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

    Returns:
        The `Run`.

    Raises:
        KadvisorError: for problems with the recipe, data or model; `Interrupted` on Ctrl-C.
    """
    from kadvisor.data import prepare_data

    say = printer or (lambda message: None)
    recipe = resolve_recipe(recipe, overrides, epochs)
    keras.utils.set_random_seed(recipe.seed)
    data = prepare_data(recipe, fold=fold, num_folds=num_folds)
    if run_dir is None:
        path = rundir.create(out_dir, recipe.name)
    else:
        path = Path(run_dir)
        path.mkdir(parents=True, exist_ok=True)
    rundir.write_text_atomic(path / rundir.RECIPE, to_toml(recipe))
    rundir.write_json_atomic(path / rundir.DATA, data.info.to_json())
    strategy = build_strategy(recipe)
    rundir.write_json_atomic(path / rundir.ENV, describe_environment(recipe, strategy))
    say(f"run directory: {path}")

    monitor = recipe.train.monitor if data.validation is not None else recipe.train.monitor.removeprefix("val_")
    if monitor != recipe.train.monitor:
        say(f"no validation split: monitoring '{monitor}' instead of '{recipe.train.monitor}'")
    run = Run(path=path, recipe=recipe)
    saver = BestModelSaver(path / rundir.MODEL, monitor, save_best_only=recipe.train.checkpoint)
    start = time.perf_counter()
    status = "finished"
    with precision(recipe.distribute.precision), strategy.scope():
        from kadvisor.models import build_model

        model = build_model(recipe, data.info.num_classes, tuple(data.info.image_shape))
        run.model = model
        try:
            train_stages(
                model, recipe, data,
                callbacks=lambda span: _callbacks(span, path, saver, monitor, say),
                prepare=lambda stage_recipe: prepare_data(stage_recipe, fold=fold, num_folds=num_folds),
                verbose=0 if quiet else (1 if sys.stdout.isatty() else 2),
                say=say,
            )
        except KeyboardInterrupt:
            status = "interrupted"
        if saver.best_epoch is None:  # no finite monitor value: keep the last model
            saver.set_model(model)
            saver.save()
        best = keras.models.load_model(path / rundir.MODEL, safe_mode=True)
        run.model = best
        # The best backbone alone, for `model.weights = "RUN/backbone.weights.h5"` later.
        rundir.save_model_atomic(best.get_layer("backbone"), path / rundir.BACKBONE_WEIGHTS)
        test = _evaluate(best, data, recipe) if status == "finished" else {}
    run.metrics = _metrics(path, monitor, saver, test, status, time.perf_counter() - start)
    rundir.write_json_atomic(path / rundir.METRICS, run.metrics)
    _plot(path, recipe)
    if status == "interrupted":
        raise Interrupted(f"interrupted; the epochs so far and the best model are in {path}")
    return run


def _callbacks(span, path, saver, monitor, say) -> list:
    recipe = span.recipe
    callbacks = [TerminateOnNaN()]
    mode = "max" if higher_is_better(monitor) else "min"
    if recipe.schedule.name == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=recipe.schedule.factor,
            patience=recipe.schedule.patience, min_lr=recipe.schedule.min_lr))
    if recipe.train.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=recipe.train.early_stopping))
    if recipe.advisor.live:
        from kadvisor.advisor import AdvisorCallback

        callbacks.append(AdvisorCallback(stop_on=recipe.advisor.stop_on, printer=say))
    # The logger and the saver come last so they see the epoch's final logs.
    callbacks += [HistoryLogger(path / rundir.HISTORY, span.stage.name), saver]
    return callbacks


def _evaluate(model, data, recipe) -> dict:
    if data.test is None:
        return {}
    test = labels_for_loss(data.test, recipe, data.info.num_classes)
    return {k: float(v) for k, v in model.evaluate(test, verbose=0, return_dict=True).items()}


def _metrics(path, monitor, saver, test, status, seconds) -> dict:
    columns = read_history_columns(path / rundir.HISTORY) if (path / rundir.HISTORY).exists() else {}
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    numeric = lambda row: {k: v for k, v in row.items() if isinstance(v, float) and k not in ("epoch",)}  # noqa: E731
    best_epoch = saver.best_epoch if saver.best_epoch is not None else (len(rows) - 1 if rows else None)
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


def _plot(path, recipe) -> None:
    history = path / rundir.HISTORY
    if history.exists():
        plot_history(read_history_columns(history), path / rundir.CURVES, title=path.name)
