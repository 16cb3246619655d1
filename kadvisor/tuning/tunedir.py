"""The tuning directory, and continuing the search saved in it.

    tuning/<name>/
      search.toml      the recipe as searched: the user's file with --set and --refine
                       applied, comments kept (best.toml is written from it)
      keras_tuner/     KerasTuner's own state: oracle.json, trial_*/trial.json, weights
      leaderboard.csv  one row per trial, best first
      best.toml        search.toml with the best trial's values written in
      search.png       the objective against each searched value

Running ``kadvisor tune`` again on the same directory continues the search. Settings
that changed since the saved search are reported: the few KerasTuner can take up
on a resumed search (more trials, more Hyperband iterations, more executions per
trial) are applied; any other change would make the saved trials incomparable with
the new ones, so it is an error naming each change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kadvisor.errors import RecipeError
from kadvisor.recipe import recipe_from_text, to_dict
from kadvisor.recipe.paths import flatten, show
from kadvisor.recipe.schema import Recipe
from kadvisor.recipe.search_space import space_entries
from kadvisor.rundir import write_text_atomic

SEARCH_RECIPE = "search.toml"
LEADERBOARD = "leaderboard.csv"
BEST = "best.toml"
PLOT = "search.png"
STATE_DIR = "keras_tuner"  # KerasTuner's project_name inside the tuning directory
APPLIED_ON_RESUME = ("search.max_trials", "search.hyperband_iterations", "search.executions_per_trial")


def default_dir(recipe: Recipe) -> Path:
    """``tuning/<recipe name>``: the same recipe finds its saved search again."""
    return Path("tuning") / recipe.name


def has_saved_search(directory: Path) -> bool:
    """True when KerasTuner has saved a search in ``directory``."""
    return (Path(directory) / STATE_DIR / "oracle.json").exists()


def settings(recipe: Recipe) -> dict[str, Any]:
    """Every setting of a recipe by dotted path, each search.space entry on its own."""
    flat = flatten(to_dict(recipe))
    space = flat.pop("search.space", {})
    flat.update({f"search.space.{path}": spec for path, spec in space_entries(space)})
    return flat


def changed_settings(old: Recipe, new: Recipe) -> list[tuple[str, Any, Any]]:
    """(path, old value, new value) for each setting that differs."""
    before, after = settings(old), settings(new)
    missing = object()
    out = []
    for path in dict.fromkeys([*before, *after]):
        a, b = before.get(path, missing), after.get(path, missing)
        if a != b:
            out.append((path, None if a is missing else a, None if b is missing else b))
    return out


def _show(value) -> str:
    return "(none)" if value is None else show(value)


def open_search(directory: Path, recipe: Recipe, text: str, *, write: bool = True) -> list[str]:
    """Checks ``recipe`` against the search saved in ``directory`` and records it.

    Args:
        directory: The tuning directory (created if missing).
        recipe: The recipe about to be searched.
        text: Its TOML text (saved as search.toml).
        write: Save search.toml (False for workers: the chief owns the directory).

    Returns:
        One line per setting changed since the saved search and applied.

    Raises:
        RecipeError: naming every other changed setting.
    """
    directory = Path(directory)
    saved = directory / SEARCH_RECIPE
    lines: list[str] = []
    if has_saved_search(directory) and saved.exists():
        old = recipe_from_text(saved.read_text(encoding="utf-8"), str(saved))
        changes = changed_settings(old, recipe)
        blocking = [c for c in changes if c[0] not in APPLIED_ON_RESUME]
        if blocking:
            listed = "; ".join(f"{p}: {_show(a)} → {_show(b)}" for p, a, b in blocking)
            raise RecipeError(
                f"{directory}: holds a search with other settings ({listed}); expected the saved "
                f"settings to continue it — or start a new search with --out DIR, or narrow "
                f"this one with --refine {directory}"
            )
        lines = [f"{p}: {_show(a)} → {_show(b)} since the saved search; applied" for p, a, b in changes]
    if write:
        directory.mkdir(parents=True, exist_ok=True)
        write_text_atomic(saved, text)
    return lines


def load_search(directory: Path) -> tuple[Recipe, str]:
    """The saved search recipe and its text.

    Raises:
        RecipeError: when ``directory`` holds no search.
    """
    path = Path(directory) / SEARCH_RECIPE
    if not path.exists() or not has_saved_search(directory):
        raise RecipeError(f"{directory}: no saved search here; expected a directory written by kadvisor tune")
    text = path.read_text(encoding="utf-8")
    return recipe_from_text(text, str(path)), text


def load_trials(directory: Path) -> list:
    """KerasTuner's saved trials (``keras_tuner/trial_*/trial.json``), in trial order."""
    from keras_tuner.engine.trial import Trial

    files = sorted((Path(directory) / STATE_DIR).glob("trial_*/trial.json"))
    return [Trial.load(str(f)) for f in files]
