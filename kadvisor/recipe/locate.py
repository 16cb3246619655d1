"""Finding the line of a dotted recipe path in TOML text, for error messages.

tomllib does not report positions, so this scans the text: table headers set the
current prefix, ``key = value`` lines complete it. It is deliberately forgiving: when a
path is not found exactly, the line of its nearest enclosing key or table is used.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _clean(key: str) -> str:
    parts = re.split(r"\s*\.\s*(?=(?:[^\"']|\"[^\"]*\"|'[^']*')*$)", key.strip())
    return ".".join(p.strip("\"'") for p in parts)


def line_index(text: str) -> dict[str, int]:
    """Maps every dotted path (and table) in ``text`` to its 1-based line number.

    Array-of-tables entries are indexed as ``stages[0]``, ``stages[1]``, ...
    """
    index: dict[str, int] = {}
    prefix = ""
    counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = _clean(header.group(2))
            if header.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
                name = f"{name}[{counts[name]}]"
            else:
                # [stages.optimizer] after [[stages]] belongs to the latest stage.
                head, _, rest = name.partition(".")
                if head in counts and rest:
                    name = f"{head}[{counts[head]}].{rest}"
            prefix = name
            index.setdefault(prefix, number)
            continue
        key = _KEY.match(line)
        if key:
            path = f"{prefix}.{_clean(key.group(1))}" if prefix else _clean(key.group(1))
            index.setdefault(path, number)
    return index


def find_line(text: str, path: str, index: dict[str, int] | None = None) -> int | None:
    """Returns the line defining ``path``, or of its nearest enclosing key or table."""
    index = line_index(text) if index is None else index
    parts = path.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in index:
            return index[candidate]
        parts.pop()
    return None
