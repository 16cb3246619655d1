"""Writing a search's results into the tuning directory: leaderboard, best.toml, plot.

``best.toml`` is search.toml — the user's recipe, comments and all — with the best
trial's values written in by tomlkit, each changed line commented with where it
came from; a value at the edge of its range says so on its own line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kadvisor.recipe.patch import apply_patch_to_toml
from kadvisor.recipe.paths import PathError, validate
from kadvisor.recipe.schema import Recipe
from kadvisor.rundir import write_text_atomic
from kadvisor.tuning import tunedir
from kadvisor.tuning.plot import plot_search
from kadvisor.tuning.results import TrialRow, edge_warnings, format_value, ranked, write_leaderboard


@dataclass
class Outputs:
    """What `write_outputs` found and wrote.

    Attributes:
        best: The best completed trial, or None.
        warnings: Path → edge-of-range warning for the best values.
        files: The files written.
    """

    best: TrialRow | None = None
    warnings: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def best_row(rows: list[TrialRow], direction: str) -> TrialRow | None:
    """The best completed trial."""
    done = [r for r in ranked(rows, direction) if r.completed]
    return done[0] if done else None


def best_recipe_text(text: str, best: TrialRow, objective: str, completed: int, warnings: dict[str, str],
                     source: Path) -> str:
    """search.toml's text with the best trial's values written in."""
    edge = set(warnings)
    score = f"{objective} {best.score:.4f}"
    values = {p: _readable(p, v) for p, v in best.values.items()}
    plain = {p: v for p, v in values.items() if p not in edge}
    if plain:
        text = apply_patch_to_toml(text, plain, comment=f"kadvisor tune: best of {completed} trials ({score})")
    for path in edge:
        text = apply_patch_to_toml(text, {path: values[path]},
                                   comment="kadvisor tune: at the edge of the searched range; widen it")
    listed = ", ".join(f"{p} = {format_value(v)}" for p, v in best.values.items())
    header = (f"# Best recipe of the search in {source} (trial {best.trial_id}, {score} after "
              f"{best.epochs} epochs):\n#   {listed}\n# Train it on all the data: kadvisor fit {source / tunedir.BEST}\n")
    return header + "".join(f"# warning: {w}\n" for w in warnings.values()) + text


def _readable(path: str, value):
    """A float to 4 significant digits (0.0023346 rather than 0.002334601795), if still valid."""
    if not isinstance(value, float):
        return value
    try:
        return validate(Recipe, path, float(f"{value:.4g}"))
    except PathError:
        return value


def write_outputs(directory: Path, text: str, space, rows: list[TrialRow], objective: str,
                  direction: str) -> Outputs:
    """Writes leaderboard.csv, and best.toml and search.png once a trial completed."""
    directory = Path(directory)
    out = Outputs(best=best_row(rows, direction))
    paths = [d.path for d in space]
    write_leaderboard(directory / tunedir.LEADERBOARD, rows, objective, direction, paths)
    out.files.append(directory / tunedir.LEADERBOARD)
    if out.best is None:
        return out
    out.warnings = edge_warnings(space, out.best)
    completed = sum(r.completed for r in rows)
    best_text = best_recipe_text(text, out.best, objective, completed, out.warnings, directory)
    write_text_atomic(directory / tunedir.BEST, best_text)
    out.files.append(directory / tunedir.BEST)
    if plot_search(directory / tunedir.PLOT, space, rows, out.best, objective):
        out.files.append(directory / tunedir.PLOT)
    return out
