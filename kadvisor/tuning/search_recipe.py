"""The recipe a search trains: ``[search]`` shortcuts applied as ordinary recipe patches.

- ``search.subsample`` scales ``data.subsample`` (a fraction of the training split);
- ``search.classes`` becomes ``data.classes`` (a class subset for quick searches);
- Hyperband owns the epoch budget: a recipe without stages trains up to
  ``search.max_epochs`` epochs (its schedule spans that budget), and a staged recipe's
  stages must hold ``search.max_epochs`` epochs, the axis Hyperband's
  ``initial_epoch``/``epochs`` fall on.

These patches live only in memory: best.toml is the user's recipe with the best
values, to train on all the data and classes.
"""

from __future__ import annotations

from kadvisor.errors import RecipeError
from kadvisor.recipe import apply_overrides
from kadvisor.recipe.locate import find_line
from kadvisor.recipe.schema import Recipe


def located(recipe: Recipe, path: str, message: str) -> RecipeError:
    """A `RecipeError` prefixed with ``file:line`` of ``path`` in the recipe's text."""
    where = recipe.source_path or "recipe"
    line = find_line(recipe.source_text, path) if recipe.source_text else None
    return RecipeError(f"{where}:{line}: {message}" if line else f"{where}: {message}")


def search_recipe(recipe: Recipe, space) -> tuple[Recipe, list[str]]:
    """Returns the recipe as searched, and notes worth telling the user.

    Args:
        recipe: The recipe with its ``[search]`` section.
        space: Its parsed ``[search.space]``.

    Raises:
        RecipeError: with ``file:line`` for settings a search cannot honour.
    """
    search = recipe.search
    patch: dict = {}
    # The recipe checks (recipe/checks.py: search_settings) already refused what a search
    # cannot honour, for `recipe check` and `fit` as well as here.
    if search.subsample < 1:
        patch["data.subsample"] = recipe.data.subsample * search.subsample
    if search.classes:
        patch["data.classes"] = list(search.classes)
    if search.algorithm == "hyperband" and not recipe.stages:
        patch["train.epochs"] = search.max_epochs
    searched = apply_overrides(recipe, patch.items(), label="[search]") if patch else recipe
    return searched, _stage_notes(recipe, space)


def _stage_notes(recipe: Recipe, space) -> list[str]:
    notes = []
    for i, stage in enumerate(recipe.stages):
        for dist in space:
            if dist.path in stage.overrides:
                notes.append(f"note: stages[{i}] ('{stage.name}') sets {dist.path} itself; "
                             f"the searched value applies to the other stages only")
    return notes
