"""Recipes: the typed schema, TOML loading, dotted-path overrides and rendering.

Pure Python (tomllib, tomlkit, dataclasses): never imports TensorFlow.
"""

from kadvisor.recipe.load import (
    apply_overrides,
    load_recipe,
    parse_override,
    recipe_from_dict,
    recipe_from_text,
)
from kadvisor.recipe.paths import PathError, leaf_fields
from kadvisor.recipe.render import to_dict, to_toml
from kadvisor.recipe.schema import Recipe, Stage

__all__ = [
    "PathError",
    "Recipe",
    "Stage",
    "apply_overrides",
    "leaf_fields",
    "load_recipe",
    "parse_override",
    "recipe_from_dict",
    "recipe_from_text",
    "to_dict",
    "to_toml",
]
