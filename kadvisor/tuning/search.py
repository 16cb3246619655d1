"""`tune`: run (or continue, or serve, or help with) the search a recipe describes.

    recipe.toml ─ --set, --refine ─▶ search.toml ─ [search] shortcuts ─▶ recipe as searched
        ─▶ RecipeHyperModel + KerasTuner tuner ─▶ trials ─▶ leaderboard.csv, best.toml, search.png

A single process runs the whole search. With `Role` "chief" it serves KerasTuner's
oracle to workers and writes the outputs as their trials finish; with "worker" it
trains the trials the chief hands out and leaves the directory to the chief.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kadvisor.errors import KadvisorError, RecipeError
from kadvisor.recipe import apply_overrides, parse_override, recipe_from_text
from kadvisor.recipe.patch import apply_patch_to_toml
from kadvisor.recipe.schema import Recipe
from kadvisor.recipe.search_space import parse_space
from kadvisor.tuning import tunedir
from kadvisor.tuning.distributed import Role, serve_oracle, wait_for_chief
from kadvisor.tuning.outputs import Outputs, best_row, write_outputs
from kadvisor.tuning.refine import refine_text
from kadvisor.tuning.results import TrialRow, last_error_line, trial_line, trial_row, write_leaderboard
from kadvisor.tuning.search_recipe import located, search_recipe


@dataclass
class TuneResult:
    """A finished (or interrupted) search, as this process saw it.

    Attributes:
        path: The tuning directory.
        role: "single", "chief" or "worker".
        objective: The objective's name; direction: "max" or "min".
        rows: Every trial (a worker knows only its own).
        outputs: Best trial, warnings and files written (not by a worker).
        seconds: Wall time of this process's part.
    """

    path: Path
    role: str
    objective: str
    direction: str
    rows: list[TrialRow] = field(default_factory=list)
    outputs: Outputs = field(default_factory=Outputs)
    seconds: float = 0.0

    @property
    def best(self) -> TrialRow | None:
        return self.outputs.best or best_row(self.rows, self.direction)

    @property
    def epochs_trained(self) -> int:
        """Epochs trained by all trials together (the search's compute budget)."""
        return sum(r.trained or 0 for r in self.rows)


def search_text(recipe_file: str | None, overrides=(), refine: str | None = None,
                say: Callable[[str], None] = lambda m: None) -> tuple[str, str]:
    """The TOML text to search and its name: RECIPE with ``--set`` and ``--refine`` applied.

    Raises:
        RecipeError: for an unreadable or invalid recipe or override.
    """
    if recipe_file is None:
        if refine is None:
            raise RecipeError("kadvisor tune: got no recipe; expected RECIPE or --refine TUNE_DIR")
        recipe_file = str(Path(refine) / tunedir.SEARCH_RECIPE)
        if not Path(recipe_file).is_file():
            raise RecipeError(f"--refine {refine}: not a tuning directory (no {tunedir.SEARCH_RECIPE}); "
                              f"expected a directory written by kadvisor tune")
    try:
        text = Path(recipe_file).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise RecipeError(f"{recipe_file}: cannot read recipe: {e.strerror or e}") from None
    recipe = recipe_from_text(text, recipe_file)
    if overrides:
        changed = apply_overrides(recipe, overrides)
        paths = [parse_override(o)[0] if isinstance(o, str) else o[0] for o in overrides]
        text = apply_patch_to_toml(text, {p: changed.get(p) for p in paths}, comment="--set")
    if refine is not None:
        saved, _ = tunedir.load_search(Path(refine))
        space = parse_space(saved.search.space, Recipe)
        rows = [trial_row(t, space) for t in tunedir.load_trials(Path(refine))]
        from kadvisor.tuning.tuners import direction

        text, lines = refine_text(text, recipe_file, rows, direction(saved.search), str(refine))
        for line in lines or ["--refine: no numeric range to narrow (no completed trial searched one)"]:
            say(f"refine {line}")
    return text, recipe_file


def tune(recipe_file: str | None = None, *, out: str | os.PathLike | None = None, overrides=(),
         refine: str | None = None, role: Role = Role(), say: Callable[[str], None] = lambda m: None,
         ) -> TuneResult:
    """Runs the search of a recipe (or this process's part of a distributed one).

    Args:
        recipe_file: The recipe TOML (optional with ``refine``: the refined search's).
        out: The tuning directory (default ``tuning/<name>``, or ``TUNE_DIR-refine``).
        overrides: ``path=value`` strings (``--set``).
        refine: A tuning directory whose top trials narrow the numeric ranges.
        role: Single process, chief or worker.
        say: Receives one-line messages (one per finished trial).

    Returns:
        The `TuneResult`.

    Raises:
        KadvisorError: for recipe, data and model problems, a search whose settings
            changed, or a search whose trials keep failing; `Interrupted` on Ctrl-C
            (the outputs so far are written).
    """
    import keras

    from kadvisor.data import prepare_data
    from kadvisor.training.devices import build_strategy, precision
    from kadvisor.tuning.hypermodel import RecipeHyperModel
    from kadvisor.tuning.tuners import build_tuner, direction

    started = time.perf_counter()
    text, filename = search_text(recipe_file, overrides, refine, say)
    recipe = recipe_from_text(text, filename)
    default = Path(f"{Path(refine)}-refine") if refine else tunedir.default_dir(recipe)
    directory = Path(out) if out is not None else default
    space = parse_space(recipe.search.space, Recipe)
    if not space:
        raise located(recipe, "search", "[search.space] must name at least one field to search, e.g. "
                      "\"optimizer.learning_rate\" = { log_uniform = [1e-4, 1e-2] }; got none")
    searched, notes = search_recipe(recipe, space)
    if role.kind == "worker":  # before any work: KerasTuner's worker would wait silently forever
        wait_for_chief(role.host, role.port, role.wait, say)
    for line in [*tunedir.open_search(directory, recipe, text, write=role.kind != "worker"), *notes]:
        say(line)
    data = prepare_data(searched, batched=False)
    objective = recipe.search.objective
    if data.validation is None and objective.startswith("val_"):
        raise located(recipe, "search.objective", f"search.objective is {objective!r} but the data has no "
                      f"validation split; expected data.val_fraction > 0 or an objective without 'val_'")
    result = TuneResult(directory, role.kind, objective, direction(recipe.search))
    keras.utils.set_random_seed(recipe.seed)
    strategy = build_strategy(searched)
    with role.environment(), precision(searched.train.precision):
        hypermodel = RecipeHyperModel(searched, space, data, objective, strategy)
        tuner = build_tuner(searched, hypermodel, directory, strategy=strategy)
        progress = _Progress(tuner, space, result, text, say, total=_total(recipe))
        if tunedir.has_saved_search(directory) and role.kind != "worker":
            done = len(tuner.oracle.trials)
            say(f"continuing the search in {directory} ({done} trial{'s' if done != 1 else ''} so far)")
        try:
            _run(tuner, role, progress, say)
        except KeyboardInterrupt:
            from kadvisor.training.fit import Interrupted

            raise Interrupted(f"interrupted; run the same command again to continue the search in {directory}") from None
        finally:
            progress.finish()
            result.seconds = round(time.perf_counter() - started, 2)
    return result


def _total(recipe: Recipe) -> int | None:
    return None if recipe.search.algorithm == "hyperband" else recipe.search.max_trials


def _run(tuner, role: Role, progress: "_Progress", say) -> None:
    import keras_tuner

    try:
        if role.kind == "chief":
            tuner.oracle.verbose = 0  # KerasTuner's own trial tables; kadvisor prints one line each
            tuner.save()
            serve_oracle(tuner.oracle, role.host, role.port, on_poll=progress.poll, on_start=lambda: say(
                f"chief: serving the search on {role.host}:{role.port}; start workers with "
                f"kadvisor tune RECIPE --worker ID --host {role.host} --port {role.port}"))
        else:
            tuner.trial_finished = progress.finished
            tuner.search(verbose=0)
    except keras_tuner.errors.FatalError as e:
        raise RecipeError(str(e)) from None
    except RuntimeError as e:
        if "consecutive failures" not in str(e):
            raise
        # KerasTuner stops after 3 failed trials in a row; its message ends with a traceback.
        raise KadvisorError(f"search stopped: {str(e).splitlines()[0]} Last error: "
                            f"{last_error_line(str(e)) or 'unknown'} (leaderboard.csv lists every trial)") from None
    except Exception as e:
        if type(e).__module__.startswith("grpc"):  # a worker lost its chief
            raise KadvisorError(f"--worker: lost the chief at {role.host}:{role.port} "
                                f"({type(e).__name__}); expected it to run until the search ends") from None
        raise


class _Progress:
    """One line per finished trial with the best so far; the outputs kept current."""

    def __init__(self, tuner, space, result: TuneResult, text: str, say, total):
        self.tuner, self.space, self.result, self.text = tuner, space, result, text
        self.say, self.total = say, total
        self.reported: set[str] = set()
        self.writes = result.role != "worker"

    def _rows(self) -> list[TrialRow]:
        return [trial_row(t, self.space) for t in list(self.tuner.oracle.trials.values())]

    def finished(self, trial_id: str) -> None:
        """Single process and worker: called after each of this process's trials."""
        oracle = self.tuner.oracle
        row = trial_row(oracle.get_trial(trial_id), self.space)
        if self.writes:
            self.result.rows = self._rows()
            best = best_row(self.result.rows, self.result.direction)
            self._write_leaderboard()
        else:
            self.result.rows.append(row)
            best_trials = oracle.get_best_trials(1)  # asks the chief: best of every worker
            best = trial_row(best_trials[0], self.space) if best_trials else None
            best = best if best is not None and best.completed else None
        self.reported.add(trial_id)
        # A worker does not know how many trials the others have finished.
        count = self._count(len(oracle.end_order)) if self.writes else ""
        self.say(trial_line(row, best, self.result.objective, count))

    def poll(self) -> None:
        """Chief: reports and records the trials workers finished since the last poll."""
        ended = [i for i in list(self.tuner.oracle.end_order) if i not in self.reported]
        if not ended:
            return
        self.result.rows = self._rows()
        best = best_row(self.result.rows, self.result.direction)
        by_id = {r.trial_id: r for r in self.result.rows}
        for trial_id in ended:
            self.reported.add(trial_id)
            self.say(trial_line(by_id[trial_id], best, self.result.objective, self._count(len(self.reported))))
        self._write_leaderboard()

    def _count(self, done: int) -> str:
        return f"{done}/{self.total}" if self.total else ""

    def _write_leaderboard(self) -> None:
        # After each trial only the leaderboard (cheap); best.toml and the plot at the end.
        write_leaderboard(self.result.path / tunedir.LEADERBOARD, self.result.rows, self.result.objective,
                          self.result.direction, [d.path for d in self.space])

    def finish(self) -> None:
        """Writes the final outputs (also after an interruption) and the warnings."""
        if not self.writes:
            return
        self.result.rows = self._rows()
        self.result.outputs = write_outputs(self.result.path, self.text, self.space, self.result.rows,
                                            self.result.objective, self.result.direction)
        for warning in self.result.outputs.warnings.values():
            self.say(f"warning: {warning}")
