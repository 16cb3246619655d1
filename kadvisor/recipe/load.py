"""Loading recipes from TOML, with ``file:line`` in every error, and ``--set`` overrides."""

from __future__ import annotations

import copy
import os
import re
import tomllib
from typing import Any, Callable, Iterable

from kadvisor.errors import RecipeError
from kadvisor.recipe.checks import CHECKS
from kadvisor.recipe.locate import find_line, line_index
from kadvisor.recipe.paths import PathError, flatten, set_path, show
from kadvisor.recipe.schema import Recipe, Stage

# Keys a [[stages]] table has besides dotted-path overrides.
_STAGE_KEYS = ("name", "trainable")
# Paths a stage may not override: they describe the data and the run as a whole.
_NOT_PER_STAGE = ("name", "seed", "data.source", "data.", "model.backbone", "model.head",
                  "validation.", "search.", "advisor.")
_PER_STAGE_DATA = ("data.augment.", "data.balance")
_SEARCH_SPACE_HEADER = re.compile(r"^[ \t]*\[[ \t]*search[ \t]*\.[ \t]*space[ \t]*\]", re.MULTILINE)


def _stage_may_override(path: str) -> bool:
    if path.startswith(_PER_STAGE_DATA):
        return True
    return not any(path == p or (p.endswith(".") and path.startswith(p)) for p in _NOT_PER_STAGE)


def recipe_from_dict(
    table: dict[str, Any],
    where: Callable[[str], str] = lambda path: "recipe",
) -> Recipe:
    """Builds and validates a `Recipe` from nested tables (as parsed from TOML).

    Args:
        table: Parsed TOML.
        where: Maps a dotted path to its location prefix ("recipe.toml:12").

    Raises:
        RecipeError: naming the location, the path, the value and what was expected.
    """
    recipe = Recipe()
    table = dict(table)
    stages = table.pop("stages", [])
    for path, value in flatten(table).items():
        try:
            set_path(recipe, path, value)
        except PathError as e:
            raise RecipeError(f"{where(path)}: {e}") from None
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        raise RecipeError(f"{where('stages')}: stages must be [[stages]] tables, got {show(stages)}")
    recipe.stages = [_stage(recipe, i, s, where) for i, s in enumerate(stages)]
    for check in CHECKS:
        for path, message in check(recipe):
            raise RecipeError(f"{where(path)}: {message}")
    return recipe


def _stage(recipe: Recipe, index: int, table: dict, where) -> Stage:
    prefix = f"stages[{index}]"
    name = table.get("name", f"stage{index + 1}")
    trainable = table.get("trainable", "all")
    for key, value in (("name", name), ("trainable", trainable)):
        if not isinstance(value, str):
            raise RecipeError(f"{where(f'{prefix}.{key}')}: {prefix}.{key} must be a string, got {show(value)}")
    overrides = flatten({k: v for k, v in table.items() if k not in _STAGE_KEYS})
    probe = copy.deepcopy(recipe)
    for path, value in overrides.items():
        loc = where(f"{prefix}.{path}")
        if not _stage_may_override(path):
            raise RecipeError(f"{loc}: {prefix}.{path} cannot change between stages; set it at the top level")
        try:
            set_path(probe, path, value)
        except PathError as e:
            raise RecipeError(f"{loc}: {prefix}.{e}") from None
        overrides[path] = copy.deepcopy(probe.get(path))
    return Stage(name=name, trainable=trainable, overrides=overrides)


def parse_override(text: str) -> tuple[str, Any]:
    """Parses ``path=value``; the value is TOML, and a bare word is taken as a string.

    Raises:
        RecipeError: when there is no ``=``.
    """
    path, sep, raw = text.partition("=")
    path, raw = path.strip(), raw.strip()
    if not sep or not path:
        raise RecipeError(f"--set {text!r}: expected PATH=VALUE, e.g. optimizer.learning_rate=3e-4")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # `--set model.backbone=resnet50` needs no quotes
    return path, value


def apply_overrides(recipe: Recipe, overrides: Iterable[str | tuple[str, Any]], label: str = "--set") -> Recipe:
    """Returns a copy of ``recipe`` with ``path=value`` overrides applied and re-checked.

    Raises:
        RecipeError: "--set optimizer.lerning_rate=1: unknown field ... did you mean ...".
    """
    out = copy.deepcopy(recipe)
    for item in overrides:
        path, value = parse_override(item) if isinstance(item, str) else item
        try:
            out.set(path, value)
        except PathError as e:
            raise RecipeError(f"{label} {path}={show(value)}: {e}") from None
    for check in CHECKS:
        for path, message in check(out):
            raise RecipeError(f"{label}: {message}")
    return out


def load_recipe(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Recipe:
    """Loads, validates and returns the recipe in a TOML file.

    Args:
        path: The recipe file.
        overrides: ``path=value`` strings applied after loading (``--set``).

    Raises:
        RecipeError: with ``file:line`` for problems in the file.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: editors that write a BOM
            text = f.read()
    except IsADirectoryError:
        raise RecipeError(f"{path}: cannot read recipe: it is a directory; expected a TOML file") from None
    except OSError as e:
        raise RecipeError(f"{path}: cannot read recipe: {e.strerror or e}; expected a readable TOML file") from None
    except UnicodeDecodeError as e:
        raise RecipeError(f"{path}: cannot read recipe: not UTF-8 text (byte {e.start}); "
                          f"expected a TOML file") from None
    recipe = recipe_from_text(text, path)
    return apply_overrides(recipe, overrides) if overrides else recipe


def recipe_from_text(text: str, filename: str = "recipe.toml") -> Recipe:
    """Parses and validates recipe TOML text; errors name ``filename:line``."""
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark is not TOML ("Invalid statement")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python 3.11's TOMLDecodeError has no lineno attribute; the message ends with it.
        found = re.search(r"\(at line (\d+), column \d+\)", str(e))
        message = re.sub(r"\s*\(at line.*\)$", "", str(e))
        loc = f"{filename}:{found.group(1)}" if found else filename
        raise RecipeError(f"{loc}: invalid TOML: {message}") from None
    index = line_index(text)

    def where(p: str) -> str:
        line = find_line(text, p, index)
        return f"{filename}:{line}" if line else filename

    header = _SEARCH_SPACE_HEADER.search(text)
    if header and table.get("search", {}).get("space") == {}:
        # A [search.space] table written but left empty means a search of nothing, which
        # `tune` refuses; so does every command. (`space = {}`, as `recipe show` writes
        # the default, means "no search" and is fine.)
        raise RecipeError(f"{filename}:{text.count(chr(10), 0, header.start()) + 1}: [search.space] must name "
                          f"at least one field to search, e.g. \"optimizer.learning_rate\" = "
                          f"{{ log_uniform = [1e-4, 1e-2] }}; got an empty table")

    recipe = recipe_from_dict(table, where)
    recipe.source_path = filename
    recipe.source_text = text
    return recipe
