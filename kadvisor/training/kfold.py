"""`kadvisor fit RECIPE --kfold K`: stratified K-fold cross-validation into one parent.

    runs/<name>-kfold-<YYYYmmdd-HHMMSS>/
      recipe.toml    the resolved recipe, validation.kfold = K
      kfold.json     {"folds": K, "runs": ["fold-1", ...], "status": "finished",
                      "summary": {metric: {"mean": m, "std": s, "values": [...]}}}
      fold-1/ ...    one normal run directory per fold

Fold ``i`` validates on the i-th part of scikit-learn's
``StratifiedKFold(K, shuffle=True, random_state=seed)`` over the data left after the
test split (see `kadvisor.data.splits`), so every fold tests on the same examples.
The summary holds, per metric, the value of each finished fold and their mean and
standard deviation (``numpy.std``, ddof=0, as scikit-learn's cross-validation reports):
the validation metrics at each fold's best epoch (``val_*``) and the test metrics
(``test_*``). kfold.json is rewritten atomically after every fold, so an interrupted
cross-validation keeps the folds it finished (``"status": "interrupted"``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kadvisor import rundir
from kadvisor.errors import KadvisorError, RecipeError
from kadvisor.recipe import apply_overrides, to_toml



@dataclass
class KFoldRun:
    """A finished (or interrupted) cross-validation.

    Attributes:
        path: The parent directory.
        folds: K.
        runs: The fold run directories finished, in fold order.
        summary: ``{metric: {"mean", "std", "values"}}`` over the finished folds.
    """

    path: Path
    folds: int
    runs: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        """``metric  mean ± std`` lines, one per metric."""
        width = max((len(name) for name in self.summary), default=0)
        return [f"{name:<{width}}  {s['mean']:.4f} ± {s['std']:.4f}"
                for name, s in self.summary.items()]


def fit_kfold(recipe, out_dir: str | os.PathLike = "runs", *, folds: int | None = None,
              overrides=(), epochs: int | None = None, quiet: bool = False,
              printer: Callable[[str], None] | None = None) -> KFoldRun:
    """Trains one model per stratified fold and summarises their metrics.

    Args:
        recipe: A `Recipe`, a path to a TOML recipe, or a dict of recipe tables.
        out_dir: Parent of the new K-fold directory.
        folds: K; defaults to the recipe's ``validation.kfold``.
        overrides: ``path=value`` strings (``--set``).
        epochs: Overrides ``train.epochs`` (of every stage).
        quiet: No Keras progress output.
        printer: Receives one-line messages, the summary at the end included.

    Returns:
        The `KFoldRun`.

    Raises:
        RecipeError: when K is below 2.
        KadvisorError: from any fold (`kadvisor.training.fit.Interrupted` on Ctrl-C,
            after kfold.json records the folds finished).
    """
    from kadvisor.training.fit import Interrupted, fit, resolve_recipe

    say = printer or (lambda message: None)
    recipe = resolve_recipe(recipe, overrides, epochs)
    k = folds if folds is not None else recipe.validation.kfold
    if k < 2:
        raise RecipeError(f"validation.kfold: got {k}; expected at least 2 folds (or --kfold K)")
    recipe = apply_overrides(recipe, [("validation.kfold", k)], label="--kfold")
    parent = rundir.create(out_dir, f"{recipe.name}-kfold")
    rundir.write_text_atomic(parent / rundir.RECIPE, to_toml(recipe))
    result = KFoldRun(parent, k)
    say(f"{k}-fold cross-validation: {parent}")
    for i in range(k):
        say(f"fold {i + 1}/{k}")
        fold_dir = parent / f"fold-{i + 1}"
        try:
            fit(recipe, quiet=quiet, printer=printer, fold=i, num_folds=k, run_dir=fold_dir)
        except (Interrupted, KeyboardInterrupt):  # the latter outside model.fit
            _write(result, "interrupted")
            raise Interrupted(
                f"interrupted in fold {i + 1} of {k}; the {len(result.runs)} finished folds "
                f"and their summary are in {parent / rundir.KFOLD}"
            ) from None
        except KadvisorError:
            if not result.runs and not _has_files(fold_dir):
                shutil.rmtree(parent)  # nothing trained yet: leave no empty parent behind
            else:
                _write(result, "failed")
            raise
        result.runs.append(fold_dir)
        result.summary = summarise([rundir.read_json(r / rundir.METRICS) for r in result.runs])
        _write(result, "finished" if i == k - 1 else "running")
    say(f"{k}-fold summary (mean ± std over folds):")
    for line in result.summary_lines():
        say("  " + line)
    return result


def summarise(fold_metrics: list[dict]) -> dict:
    """``{metric: {"mean", "std", "values"}}`` from the folds' metrics.json contents.

    Takes the ``val_*`` entries of each fold's best epoch and its test metrics (as
    ``test_<name>``); a metric missing from some folds is summarised over the others.
    """
    per_metric: dict[str, list[float]] = {}
    for metrics in fold_metrics:
        best = {k: v for k, v in (metrics.get("best") or {}).items() if k.startswith("val_")}
        test = {f"test_{k}": v for k, v in (metrics.get("test") or {}).items()}
        for name, value in {**best, **test}.items():
            if isinstance(value, (int, float)):
                per_metric.setdefault(name, []).append(float(value))
    return {
        name: {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}
        for name, values in sorted(per_metric.items())
    }


def _write(result: KFoldRun, status: str) -> None:
    rundir.write_json_atomic(result.path / rundir.KFOLD, {
        "folds": result.folds,
        "runs": [r.name for r in result.runs],
        "status": status,
        "summary": result.summary,
    })


def _has_files(path: Path) -> bool:
    return path.exists() and any(path.iterdir())
