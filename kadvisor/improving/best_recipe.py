"""``best.toml``: the user's recipe with the kept changes written in, comments and all.

The starting text is the user's file with ``--set`` applied (as ``kadvisor tune``
writes its search.toml: `kadvisor.tuning.search.search_text`); every kept change is
written into it by tomlkit (`kadvisor.recipe.patch.apply_patch_to_toml`), each
changed line marked with the round that kept it and the value it replaced:

    learning_rate = 0.001 # kadvisor improve: round 1 (was 5)

The candidate recipe of a round is built the same way, with its one change on top.
"""

from __future__ import annotations

from typing import Any, Iterable

from kadvisor.advisor.report import show_value
from kadvisor.errors import RecipeError
from kadvisor.improving.rounds import RoundRow
from kadvisor.recipe.patch import apply_patch_to_toml


def with_changes(text: str, rows: Iterable[RoundRow], source: str) -> str:
    """``text`` with each row's patch applied in order, each line commented.

    Args:
        text: The starting recipe text (``start.toml``).
        rows: The rounds whose changes to write (kept rounds, then maybe a candidate).
        source: The file name for error messages.

    Raises:
        RecipeError: If a patch cannot be written into the TOML document.
    """
    for row in rows:
        for path, new in row.patch.items():
            text = _patch(text, {path: new}, _comment(row, path), source)
    return text


def _comment(row: RoundRow, path: str) -> str:
    if path not in row.was:
        return f"kadvisor improve: round {row.round}"
    return f"kadvisor improve: round {row.round} (was {_short(row.was[path])})"


def _short(value: Any) -> str:
    # show_value writes a list of [[stages]] tables as "[2 stage tables]".
    return show_value(value) if value not in (None, [], {}) else "unset"


def _patch(text: str, patch: dict, comment: str, source: str) -> str:
    try:
        return apply_patch_to_toml(text, patch, comment=comment)
    except ValueError as exc:
        raise RecipeError(f"{source}: {exc}") from None


def best_text(text: str, kept: list[RoundRow], best: RoundRow, rounds: int, objective: str,
              directory: str) -> str:
    """The text of ``best.toml``: a header saying where it came from, then the recipe.

    Args:
        text: The starting recipe text.
        kept: The kept rounds, in order (their changes are written in).
        best: The incumbent round (the last kept one, or round 0).
        rounds: How many rounds were trained.
        objective: The validation objective's name.
        directory: The improve directory, for the header.
    """
    value = f"{objective} {best.value:.4f}" if best.value == best.value else f"{objective} n/a"
    header = [f"# kadvisor improve: the best of {rounds} round{'s' if rounds != 1 else ''} in {directory} "
              f"(round {best.round}, {value}; the test split decided nothing)."]
    if kept:
        header += [f"#   round {r.round} ({r.finding}): {r.change}" for r in kept]
    else:
        header.append("#   no change was kept: this is the recipe as given")
    header.append(f"# Train it: kadvisor fit {directory}/best.toml")
    return "\n".join(header) + "\n" + with_changes(text, kept, f"{directory}/best.toml")
