"""Confirming a search: train its top trials' recipes on all the data with ``fit``.

A search on a subsample, a class subset or a short budget ranks trials cheaply but
noisily; the last step of coarse-to-fine is to train the few best for real and keep
the one that validates best.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kadvisor.recipe import recipe_from_text
from kadvisor.recipe.patch import apply_patch_to_toml
from kadvisor.recipe.schema import Recipe
from kadvisor.recipe.search_space import parse_space
from kadvisor.tuning import tunedir
from kadvisor.tuning.results import TrialRow, distinct_top, format_value, trial_row


@dataclass
class Confirmed:
    """One top trial trained on all the data.

    Attributes:
        trial: The trial's row in the search.
        run: The `kadvisor.training.fit.Run` of its recipe.
        score: The search objective's best value in that run.
    """

    trial: TrialRow
    run: object
    score: float | None


def confirm(directory: str | os.PathLike, top: int = 3, *, out_dir: str | os.PathLike | None = None,
            epochs: int | None = None, say: Callable[[str], None] = lambda m: None) -> list[Confirmed]:
    """Trains the recipes of the ``top`` best trials of a search on all the data.

    Args:
        directory: A tuning directory.
        top: How many distinct trials to confirm.
        out_dir: Parent of the run directories (default ``directory/confirm``).
        epochs: Overrides ``train.epochs`` (of every stage), as ``fit --epochs``.
        say: Receives one line per confirmed trial.

    Returns:
        The `Confirmed` runs, best score first.
    """
    from kadvisor.training.fit import fit
    from kadvisor.tuning.tuners import direction

    directory = Path(directory)
    recipe, text = tunedir.load_search(directory)
    space = parse_space(recipe.search.space, Recipe)
    sense = direction(recipe.search)
    rows = [trial_row(t, space) for t in tunedir.load_trials(directory)]
    out_dir = Path(out_dir) if out_dir is not None else directory / "confirm"
    objective = recipe.search.objective
    confirmed = []
    for row in distinct_top(rows, sense, top):
        trial_text = apply_patch_to_toml(text, row.values, comment=f"kadvisor tune: trial {row.trial_id}")
        trial_recipe = recipe_from_text(trial_text, str(directory / tunedir.SEARCH_RECIPE))
        trial_recipe.name = f"{recipe.name}-trial{row.trial_id}"
        run = fit(trial_recipe, out_dir, epochs=epochs, quiet=True)
        score = _best_logged(run.path, objective, sense)
        values = ", ".join(f"{p}={format_value(v)}" for p, v in row.values.items())
        say(f"trial {row.trial_id}: search {row.score:.4f} → all data {objective} "
            f"{'n/a' if score is None else f'{score:.4f}'} [{values}] {run.path}")
        confirmed.append(Confirmed(row, run, score))
    sign = -1 if sense == "max" else 1
    return sorted(confirmed, key=lambda c: sign * c.score if c.score is not None else float("inf"))


def _best_logged(run_path: Path, objective: str, sense: str) -> float | None:
    """The objective's best epoch value in a run's history.csv (as the search scored it)."""
    from kadvisor.plotting import read_history_columns

    values = [v for v in read_history_columns(run_path / "history.csv").get(objective, []) if isinstance(v, float)]
    if not values:
        return None
    return max(values) if sense == "max" else min(values)
