"""Coarse-to-fine: narrow each numeric range of a search around its top trials.

``kadvisor tune RECIPE --refine TUNE_DIR`` takes the best quarter (at least 3) of the
completed trials of the search in TUNE_DIR and, for each numeric path RECIPE also
searches, sets the range to the span of their values, padded on each side by half
that span (at least a tenth of the old width; log-scaled for log_uniform) and kept
inside the old range. Choices and booleans are kept as they are. The narrowed
ranges are written into RECIPE's text with tomlkit, comments kept, and a comment
saying where each came from.
"""

from __future__ import annotations

import math
from typing import Any

import tomlkit

from kadvisor.recipe import recipe_from_text
from kadvisor.recipe.schema import Recipe
from kadvisor.recipe.search_space import Distribution, parse_space
from kadvisor.tuning.results import TrialRow, distinct_top, format_value

MIN_TOP = 3
TOP_FRACTION = 0.25


def top_rows(rows: list[TrialRow], direction: str) -> list[TrialRow]:
    """The best quarter of the completed trials (distinct values), at least `MIN_TOP`."""
    done = distinct_top(rows, direction)
    return done[: max(MIN_TOP, math.ceil(TOP_FRACTION * len(done)))]


def narrowed(dist: Distribution, values: list) -> tuple[Any, Any]:
    """The new [low, high] of a numeric distribution around ``values``."""
    log = dist.kind == "log_uniform"
    scale = (lambda v: math.log10(v)) if log else (lambda v: float(v))
    unscale = (lambda v: 10 ** v) if log else (lambda v: v)
    low, high = scale(dist.low), scale(dist.high)
    lo, hi = min(map(scale, values)), max(map(scale, values))
    pad = max((hi - lo) / 2, (high - low) / 10)
    new_low, new_high = unscale(max(low, lo - pad)), unscale(min(high, hi + pad))
    if dist.integer:
        step = int(dist.step or 1)
        # Stay on the old grid (low + k * step) so every old choice remains reachable.
        new_low = int(dist.low) + step * math.floor((new_low - dist.low) / step)
        new_high = int(dist.low) + step * math.ceil((new_high - dist.low) / step)
        if new_low == new_high:
            new_low, new_high = max(int(dist.low), new_low - step), min(int(dist.high), new_high + step)
        return new_low, new_high
    # Three significant digits read better in a recipe; rounding stays inside the old range.
    rounded = max(dist.low, _round(new_low)), min(dist.high, _round(new_high))
    return rounded if rounded[0] < rounded[1] else (new_low, new_high)


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def refine_text(text: str, filename: str, rows: list[TrialRow], direction: str, source: str) -> tuple[str, list[str]]:
    """Narrows RECIPE's numeric search ranges around the top trials of another search.

    Args:
        text: RECIPE's TOML text.
        filename: Its name (for error messages).
        rows: The trials of the search being refined.
        direction: "max" or "min" for its objective.
        source: The refined tuning directory (named in the comments).

    Returns:
        The new text and one line per narrowed range.
    """
    recipe = recipe_from_text(text, filename)
    top = top_rows(rows, direction)
    lines = []
    for dist in parse_space(recipe.search.space, Recipe):
        values = [r.values[dist.path] for r in top if dist.path in r.values]
        if not dist.numeric or not values:
            continue
        low, high = narrowed(dist, values)
        if (low, high) == (dist.low, dist.high):
            continue
        spec = {dist.kind: [low, high]}
        if dist.step is not None and not (dist.integer and dist.step == 1):
            spec["step"] = dist.step
        comment = f"narrowed by kadvisor tune --refine around the top {len(top)} trials of {source}"
        text = set_space_entry(text, dist.path, spec, comment)
        lines.append(
            f"{dist.path}: [{format_value(dist.low)}, {format_value(dist.high)}] → "
            f"[{format_value(low)}, {format_value(high)}] (top {len(top)}: "
            f"{', '.join(format_value(v) for v in sorted(values))})"
        )
    recipe_from_text(text, filename)  # the narrowed ranges are valid by construction; check anyway
    return text, lines


def set_space_entry(text: str, path: str, spec: dict, comment: str) -> str:
    """Replaces one ``[search.space]`` entry in TOML text, keeping everything else.

    `kadvisor.recipe.patch.apply_patch_to_toml` splits paths at every dot; a search
    space key is itself a dotted path (quoted, or written as nested keys), so it is
    found here by walking the table.
    """
    doc = tomlkit.parse(text)
    space = doc.setdefault("search", tomlkit.table()).setdefault("space", tomlkit.table())
    node, parts = space, [path]
    if path not in space:  # written as nested keys: optimizer.learning_rate = {...}
        parts = path.split(".")
        for part in parts[:-1]:
            if part not in node:
                node, parts = space, [path]  # not there at all: add it as a quoted key
                break
            node = node[part]
    item = tomlkit.inline_table()
    item.update(spec)
    item.comment(comment)
    node[parts[-1]] = item
    return tomlkit.dumps(doc)
