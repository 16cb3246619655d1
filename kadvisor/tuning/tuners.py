"""The search algorithms: KerasTuner's Hyperband, random search and Bayesian optimisation.

`build_tuner` maps ``[search]`` onto the KerasTuner tuner of ``search.algorithm``.
The tuners are KerasTuner's own, with one mixin: it calls back once per finished
trial (for the progress line and the leaderboard) and keeps a worker from
busy-waiting while the oracle has no trial to give.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path
from typing import Callable

import keras_tuner

from kadvisor.recipe.schema import Recipe
from kadvisor.training.callbacks import higher_is_better
from kadvisor.tuning.tunedir import STATE_DIR
# Seconds a tuner waits before asking again when the oracle answered IDLE (Hyperband
# waits for a round's trials to finish); KerasTuner itself re-asks at once.
IDLE_WAIT = 0.5


class _Reporting:
    """Mixin for a KerasTuner tuner: ``trial_finished(trial_id)`` after each trial."""

    trial_finished: Callable[[str], None] | None = None
    _asked_in_vain = False

    def pre_create_trial(self):
        if self._asked_in_vain:
            time.sleep(IDLE_WAIT)
        self._asked_in_vain = True
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        self._asked_in_vain = False
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self.trial_finished is not None:
            self.trial_finished(trial.trial_id)


class HyperbandTuner(_Reporting, keras_tuner.Hyperband):
    """KerasTuner's Hyperband: many short trials, the best continued for longer."""


class RandomTuner(_Reporting, keras_tuner.RandomSearch):
    """KerasTuner's random search: ``search.max_trials`` independent trials."""


class BayesianTuner(_Reporting, keras_tuner.BayesianOptimization):
    """KerasTuner's Bayesian optimisation (a Gaussian process over the space)."""


ALGORITHMS = {"hyperband": HyperbandTuner, "random": RandomTuner, "bayesian": BayesianTuner}


def direction(search) -> str:
    """"max" or "min": ``search.direction``, or inferred from the objective's name."""
    if search.direction != "auto":
        return search.direction
    return "max" if higher_is_better(search.objective) else "min"


def search_seed(recipe: Recipe) -> int:
    """The algorithm's seed: ``search.seed``, else the recipe's.

    KerasTuner reads a seed of 0 as "no seed" and draws a random one, so the seed it
    gets is shifted by one: every kadvisor seed, 0 included, is reproducible.
    """
    return (recipe.search.seed or recipe.seed) + 1


def build_tuner(recipe: Recipe, hypermodel, directory, *, strategy=None, overwrite: bool = False):
    """Returns the KerasTuner tuner of ``search.algorithm``, reloading saved state.

    Args:
        recipe: The recipe as searched.
        hypermodel: The `RecipeHyperModel`.
        directory: The tuning directory; KerasTuner keeps its state in
            ``directory/keras_tuner``.
        strategy: ``tf.distribute`` strategy the models are built under.
        overwrite: Start afresh instead of continuing a saved search.
    """
    search = recipe.search
    common = dict(
        hypermodel=hypermodel,
        objective=keras_tuner.Objective(search.objective, direction(search)),
        seed=search_seed(recipe),
        executions_per_trial=search.executions_per_trial,
        directory=str(directory),
        project_name=STATE_DIR,
        distribution_strategy=strategy,
        overwrite=overwrite,
    )
    cls = ALGORITHMS[search.algorithm]
    if search.algorithm == "hyperband":
        common.update(max_epochs=search.max_epochs, factor=search.factor,
                      hyperband_iterations=search.hyperband_iterations)
    else:
        common.update(max_trials=search.max_trials)
    _adopt_saved_search(Path(directory))
    # KerasTuner prints "Reloading Tuner from ..." itself; kadvisor says it in its own words.
    hypermodel.declaring = True
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            tuner = cls(**common)
    finally:
        hypermodel.declaring = False
    if search.algorithm == "hyperband" and hasattr(tuner.oracle, "hyperband_iterations"):
        # A reloaded Hyperband oracle restores its saved iteration count; the recipe's wins.
        tuner.oracle.hyperband_iterations = search.hyperband_iterations
    return tuner


def _adopt_saved_search(directory: Path) -> None:
    # KerasTuner reloads a saved search only when its own per-tuner file exists
    # (tuner0.json, chief.json); a search saved under another id — a single process
    # continued by a chief — would be overwritten instead of continued.
    project = directory / STATE_DIR
    own = project / f"{os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')}.json"
    if (project / "oracle.json").exists() and not own.exists():
        own.write_text("{}", encoding="utf-8")
