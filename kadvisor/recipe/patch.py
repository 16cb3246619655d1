"""Comment-preserving patching of a TOML recipe (``diagnose --apply``, tuner's best.toml).

`apply_patch_to_toml` sets dotted paths in a TOML document with tomlkit, so the user's
comments, ordering and layout survive. A path is resolved the way TOML resolves it:
through ``[section]`` tables, super-tables (``[data.augment]`` without ``[data]``) and
dotted keys (``optimizer.learning_rate = 1e-3`` at top level). A missing section is
created as a ``[table]`` at the end. ``stages`` (an array of ``[[stages]]`` tables) is
special: when the new list extends the old one, only the new tables are appended.
"""

from __future__ import annotations

from typing import Any

import tomlkit
from tomlkit.items import AoT, Item, Table
from tomlkit.toml_document import TOMLDocument

__all__ = ["apply_patch_to_toml"]


def _container_for(doc: TOMLDocument, parts: list[str]) -> Any:
    """Returns the table holding ``parts[-1]``, creating ``[a.b]`` tables if needed."""
    node: Any = doc
    for i, part in enumerate(parts[:-1]):
        if part not in node:
            # A missing section goes at the end of its parent as its own [a.b] table.
            node.add(part, tomlkit.table())
            node = node[part]
            continue
        child = node[part]
        if not isinstance(child, (dict, Table)) and not hasattr(child, "keys"):
            raise ValueError(f"cannot set '{'.'.join(parts)}': '{'.'.join(parts[: i + 1])}' is not a table")
        node = child
    return node


def _toml_value(value: Any) -> Item:
    """A tomlkit item for a Python value (lists of numbers stay inline)."""
    return tomlkit.item(value)


def _flat_table(values: dict) -> Table:
    """A table whose nested dicts are written as dotted keys (``optimizer.learning_rate``)."""
    table = tomlkit.table()

    def walk(prefix: list[str], obj: dict) -> None:
        for key, val in obj.items():
            if isinstance(val, dict):
                walk(prefix + [key], val)
            else:
                path = prefix + [key]
                table.add(tomlkit.key(path) if len(path) > 1 else key, val)

    walk([], values)
    return table


def _set_stages(doc: TOMLDocument, stages: list, comment: str | None) -> None:
    old = doc.get("stages")
    old_list = old.unwrap() if old is not None else []
    if old is not None and isinstance(old, AoT) and stages[: len(old_list)] == old_list:
        new = stages[len(old_list):]
        for table_values in new:
            table = _flat_table(table_values)
            if comment:
                table.comment(comment)
            old.append(table)
        return
    aot = tomlkit.aot()
    for table_values in stages:
        table = _flat_table(table_values)
        if comment:
            table.comment(comment)
        aot.append(table)
    if old is not None:
        del doc["stages"]
    doc.append("stages", aot)


def apply_patch_to_toml(text: str, patch: dict[str, object], comment: str | None = None) -> str:
    """Sets each dotted path of ``patch`` in the TOML document ``text``.

    Args:
        text: The recipe file's content.
        patch: Dotted path → new value (``{"optimizer.learning_rate": 3e-4}``).
        comment: Written as a TOML comment on each changed line (e.g.
            ``"kadvisor diagnose: overfitting"``).

    Returns:
        The edited document; everything not patched is kept byte for byte.

    Raises:
        ValueError: If ``text`` is not valid TOML or a path runs through a non-table.
    """
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ValueError(f"invalid TOML: {exc}") from None
    for path, value in patch.items():
        parts = path.split(".")
        if parts == ["stages"] and isinstance(value, list) and all(isinstance(v, dict) for v in value):
            _set_stages(doc, value, comment)
            continue
        node = _container_for(doc, parts)
        key = parts[-1]
        item = _toml_value(value)
        if comment:
            item.comment(comment)
        if key in node:
            node[key] = item
        else:
            node.add(key, item)
    return tomlkit.dumps(doc)
