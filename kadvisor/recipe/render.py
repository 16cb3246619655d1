"""Writing a recipe back out: plain tables, or TOML with every default and its help."""

from __future__ import annotations

import dataclasses

import tomlkit

from kadvisor.recipe.paths import section_fields


def to_dict(recipe) -> dict:
    """Returns the recipe as nested plain dicts (stages as lists of tables)."""
    out: dict = {}
    for f, annotation in section_fields(type(recipe)):
        value = getattr(recipe, f.name)
        if f.name == "stages":
            out["stages"] = [_stage_table(s) for s in value]
        elif dataclasses.is_dataclass(annotation):
            out[f.name] = to_dict(value)
        else:
            out[f.name] = value
    return out


def _stage_table(stage) -> dict:
    table = {"name": stage.name, "trainable": stage.trainable}
    table.update(stage.overrides)
    return table


def to_toml(recipe, comments: bool = True) -> str:
    """Renders the fully resolved recipe as TOML, each field commented with its help."""
    doc = tomlkit.document()
    _fill(doc, recipe, comments)
    for stage in recipe.stages:
        # Stage overrides are written with quoted dotted keys so they read as paths.
        doc.setdefault("stages", tomlkit.aot()).append(tomlkit.item(_stage_table(stage)))
    return tomlkit.dumps(doc)


def _fill(container, obj, comments: bool) -> None:
    nested = []
    for f, annotation in section_fields(type(obj)):
        if f.name == "stages":
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(annotation):
            nested.append((f, value))
            continue
        item = tomlkit.item(value)
        if isinstance(value, dict):
            item = tomlkit.inline_table()
            item.update(value)
        if comments and f.metadata.get("help"):
            item.comment(f.metadata["help"])
        container.add(f.name, item)
    for f, value in nested:
        table = tomlkit.table()
        if comments and f.metadata.get("help"):
            table.comment(f.metadata["help"])
        _fill(table, value, comments)
        container.add(f.name, table)
