"""The improve loop: fit, diagnose the best run, try its first action, keep it if it helps.

    round 0: fit the recipe (start.toml: the user's file with --set applied)
    round n: diagnose the incumbent (the best run so far); take its first action not
             tried yet (skipping one that changes the validation split: `YARDSTICK`); fit start.toml + the kept changes + that action; keep the change
             when the validation objective beats the incumbent's by more than its noise
             (`kadvisor.improving.decision`), else revert it — the next round tries the
             incumbent's next action
    stop:    the diagnosis is healthy (or too little to judge), no untried action is
             left, ``rounds`` rounds after round 0 were trained, or the next action's
             epochs do not fit in what is left of ``budget``

Decisions read only validation numbers; the test metric of every round is recorded and
reported. Every round is a kadvisor run directory inside the improve directory, so a
killed ``improve`` resumes with `resume`: finished rounds are read back from
``improve.json``, an interrupted round continues its run with `kadvisor.training.fit.resume`.

This module imports TensorFlow only when a round is trained.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kadvisor import rundir
from kadvisor.advisor.findings import Action
from kadvisor.advisor.report import describe_action
from kadvisor.errors import DataError, InputError, KadvisorError, ModelError, RecipeError
from kadvisor.improving import state as st
from kadvisor.improving.best_recipe import best_text, with_changes
from kadvisor.improving.decision import MIN_NOISE, NOISE_EPOCHS, decide, noise, run_value
from kadvisor.improving.plot import plot_rounds
from kadvisor.improving.rounds import BASELINE, FAILED, RoundRow, round_line, test_name, write_rounds
from kadvisor.recipe import recipe_from_text
from kadvisor.recipe.schema import Recipe

# Proposes the candidate changes for a diagnosis, best first: (finding label, concrete action).
Proposer = Callable[[object, dict], "list[tuple[str, Action]]"]


# Fields that decide which images are validated (or the splits themselves): a change to
# one moves the yardstick, so its validation objective cannot be compared with the
# incumbent's. improve skips such actions (diagnose --apply still offers them).
YARDSTICK = ("seed", "data.val_fraction", "data.test_fraction", "data.validation_split", "data.test_split",
             "data.source", "data.classes")


def moves_the_yardstick(patch: dict) -> bool:
    """Whether a patch changes the validation split the rounds are compared on."""
    return any(path in YARDSTICK for path in patch)


def advisor_actions(diagnosis, current: dict) -> list[tuple[str, Action]]:
    """The default `Proposer`: the diagnosis's ranked actions, concrete for ``current``
    (the same list ``kadvisor diagnose --apply --action N`` counts in)."""
    from kadvisor.advisor.command import applicable_actions

    return [(finding.rule, action) for finding, action in applicable_actions(diagnosis, current)]


@dataclass
class ImproveResult:
    """What `improve` did.

    Attributes:
        path: The improve directory.
        rows: Every finished round, in order (`kadvisor.improving.rounds.RoundRow`).
        best: The incumbent round at the end.
        best_recipe: ``best.toml`` as a validated `Recipe`.
        best_text: The text of ``best.toml``.
        stopped: Why the loop stopped.
        objective: The validation objective the decisions compared.
    """

    path: Path
    rows: list[RoundRow]
    best: RoundRow
    best_recipe: Recipe
    best_text: str
    stopped: str
    objective: str

    @property
    def kept(self) -> list[RoundRow]:
        return [r for r in self.rows if r.decision == "kept"]

    @property
    def epochs(self) -> int:
        """Epochs trained by all rounds together."""
        return sum(r.epochs for r in self.rows)


def improve(recipe: str | os.PathLike, *, out: str | os.PathLike | None = None, overrides=(),
            rounds: int = 5, budget: int | None = None, objective: str = "val_accuracy",
            min_noise: float = MIN_NOISE, noise_epochs: int = NOISE_EPOCHS,
            propose: Proposer | None = None, say: Callable[[str], None] | None = None,
            before_training: Callable[[], None] | None = None) -> ImproveResult:
    """Improves a recipe round by round with the advisor's actions.

    Args:
        recipe: The recipe TOML file (its comments are kept in ``best.toml``).
        out: The improve directory, new or empty (default ``improve/<name>-<stamp>``).
        overrides: ``path=value`` strings (``--set``), written into start.toml.
        rounds: Most rounds after round 0.
        budget: Most epochs of all rounds together, round 0 included (None: no limit).
        objective: The validation metric the decisions compare (``val_accuracy`` or
            ``val_loss``; the direction follows from the name).
        min_noise: The floor of the noise margin (`kadvisor.improving.decision`).
        noise_epochs: The noise is the spread over the incumbent's last this many epochs.
        propose: Which changes to try for a diagnosis, best first (default
            `advisor_actions`). Tests pass their own to make a round's candidate
            known; the keep/revert decision is the same either way.
        say: Receives one line per round (and a few more).
        before_training: Called once, after the input is checked and before the first
            fit (the CLI starts TensorFlow quietly there).

    Returns:
        The `ImproveResult`.

    Raises:
        RecipeError: The recipe, an override or the objective is invalid.
        InputError: ``out`` is not a new or empty folder; ``budget`` is below round 0's epochs.
        Interrupted: On Ctrl-C; `resume` continues.
    """
    from kadvisor.tuning.search import search_text

    text, recipe_file = search_text(os.fspath(recipe), overrides)
    start = recipe_from_text(text, recipe_file)
    higher = _check_objective(start, objective, recipe_file)
    _check_budget(start, budget)
    directory = st.new_directory(out, start.name)
    rundir.write_text_atomic(directory / st.START, text)
    state = st.ImproveState(recipe_file=recipe_file, overrides=list(overrides), objective=objective,
                            higher_is_better=higher, rounds=rounds, budget=budget, min_noise=min_noise,
                            noise_epochs=noise_epochs)
    st.save(directory, state)
    return _Loop(directory, state, text, propose, say, before_training).run()


def resume(directory: str | os.PathLike, *, rounds: int | None = None, budget: int | None = None,
           propose: Proposer | None = None, say: Callable[[str], None] | None = None,
           before_training: Callable[[], None] | None = None) -> ImproveResult:
    """Continues a killed or interrupted `improve` in ``directory``.

    Finished rounds are not trained again; a round that was interrupted continues its
    run directory from its last committed epoch. ``rounds`` and ``budget``, when given,
    replace the saved limits (to go on after the loop stopped at one of them).

    Raises:
        InputError: ``directory`` is not an improve directory.
    """
    directory = Path(directory)
    state, text = st.load(directory)
    if rounds is not None:
        state.rounds = rounds
    if budget is not None:
        state.budget = budget
    state.stopped = ""
    return _Loop(directory, state, text, propose, say, before_training).run()


def _check_objective(recipe: Recipe, objective: str, source: str) -> bool:
    """Refuses an objective that is not a logged validation metric; returns its direction."""
    from kadvisor.recipe.checks import LOGGED_METRICS

    if not objective.startswith("val_") or objective.removeprefix("val_") not in LOGGED_METRICS:
        choices = ", ".join(f"val_{m}" for m in LOGGED_METRICS)
        raise RecipeError(f"{source}: the improve objective must be a validation metric ({choices}), "
                          f"got {objective!r}")
    if not (recipe.data.val_fraction > 0 or recipe.data.validation_split):
        raise RecipeError(f"{source}: data.val_fraction is 0 and there is no data.validation_split; "
                          f"kadvisor improve decides on validation, expected data.val_fraction > 0")
    return "loss" not in objective  # the logged metrics are a loss and accuracies


# A round whose run learns nothing or blows up says so within advisor.min_epochs epochs;
# the rest of its epochs would only spend the budget (the diagnosis reads the same).
HOPELESS = ("diverged", "stalled")


def _stop_hopeless(recipe: Recipe) -> Recipe:
    """The round's recipe with live advice on and `HOPELESS` findings in its stop_on.

    Only for rounds longer than ``advisor.min_epochs``: a shorter one is cheap, and the
    curve rules cannot call it hopeless before then anyway.
    """
    advisor = recipe.advisor
    if _planned_epochs(recipe) <= advisor.min_epochs:
        return recipe
    stop_on = list(dict.fromkeys([*advisor.stop_on, *HOPELESS]))
    return dataclasses.replace(recipe, advisor=dataclasses.replace(advisor, live=True, stop_on=stop_on))


def _planned_epochs(recipe: Recipe) -> int:
    """Epochs of all stages together (`kadvisor.training.loop.total_epochs`, whose module
    imports TensorFlow; the budget is checked before TensorFlow starts)."""
    from kadvisor.training.stages import stages_of

    stages = stages_of(recipe)
    return sum((recipe.for_stage(i) if recipe.stages else recipe).train.epochs for i in range(len(stages)))


def _check_budget(recipe: Recipe, budget: int | None) -> None:
    if budget is not None and _planned_epochs(recipe) > budget:
        raise InputError(f"--budget {budget}: round 0 alone trains {_planned_epochs(recipe)} epochs; expected a "
                         f"budget of at least that (or fewer epochs: --set train.epochs=N)")


def _key(rows: list[RoundRow]) -> str:
    """Identifies a recipe by its changes: the same changes are never trained twice."""
    merged: dict = {}
    for row in rows:
        merged.update(row.patch)
    return json.dumps(merged, sort_keys=True, default=str)


class _Loop:
    """One process's run of the loop over an improve directory."""

    def __init__(self, directory: Path, state: st.ImproveState, text: str, propose, say, before_training):
        self.directory, self.state, self.text = directory, state, text
        self.propose = propose or advisor_actions
        self.say = say or (lambda message: None)
        self.before_training = before_training
        self.source = str(directory / st.START)

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> ImproveResult:
        state = self.state
        self.say(f"improve directory: {self.directory}")
        if self.before_training is not None:  # before anything below imports TensorFlow
            self.before_training()
        self._write_outputs()
        if state.pending is not None:
            pending = state.pending
            self.say(f"resuming round {pending.round} in {self.directory / pending.run}")
            self._train(pending, resume=True)
        if not state.rows:
            self._train(RoundRow(0, "", "", run=st.round_dir(0)))
        while not state.stopped:
            candidate, reason = self._next()
            if candidate is None:
                state.stopped = reason
            else:
                self._train(candidate)
        st.save(self.directory, state)
        self._write_outputs()
        self.say(f"stopped: {state.stopped}")
        return self._result()

    def _next(self) -> tuple[RoundRow | None, str]:
        """The next round to train, or None and why the loop stops."""
        from kadvisor.advisor.engine import diagnose
        from kadvisor.advisor.inputs import read_recipe_dict

        state = self.state
        done = len(state.rows) - 1
        if done >= state.rounds:
            return None, f"{state.rounds} round{'s' if state.rounds != 1 else ''} after round 0 done (--rounds)"
        incumbent = state.incumbent
        run_path = self.directory / incumbent.run
        diagnosis = diagnose(str(run_path))
        rundir.write_text_atomic(run_path / rundir.DIAGNOSIS, diagnosis.to_json() + "\n")
        if diagnosis.healthy:
            return None, f"healthy: the advisor found nothing to change in round {incumbent.round}"
        if not diagnosis.judged:
            return None, (f"too little to judge: round {incumbent.round} has too few epochs for the "
                          f"advisor's curve rules (raise train.epochs)")
        number = len(state.rows)
        over_budget = []
        for label, action in self.propose(diagnosis, read_recipe_dict(str(run_path / rundir.RECIPE))):
            row = RoundRow(number, label, describe_action(action), dict(action.patch),
                           was={p: old for p, (old, _) in action.change.items()}, run=st.round_dir(number))
            key = _key([*state.kept, row])
            if key in state.tried or not row.patch:
                continue
            if moves_the_yardstick(row.patch):
                self.say(f"skipped {label}: {row.change}: it changes the validation split the rounds are compared on")
                state.tried.append(key)
                continue
            try:
                recipe = self._recipe([*state.kept, row])
            except RecipeError as e:  # an action this recipe cannot take: noted, never tried again
                self.say(f"skipped {label}: {row.change}: {e}")
                state.tried.append(key)
                continue
            left = None if state.budget is None else state.budget - state.epochs_used
            if left is not None and _planned_epochs(recipe) > left:
                over_budget.append(f"{row.change} needs {_planned_epochs(recipe)}")
                continue
            return row, ""
        if over_budget:
            return None, (f"budget spent: {state.epochs_used} of {state.budget} epochs used; "
                          f"{over_budget[0]} epochs")
        return None, f"no action left: every action for round {incumbent.round} was tried"

    # -- one round --------------------------------------------------------------------

    def _recipe(self, rows: list[RoundRow]) -> Recipe:
        """start.toml with these rounds' changes, validated."""
        return recipe_from_text(with_changes(self.text, rows, self.source), self.source)

    def _train(self, row: RoundRow, resume: bool = False) -> None:
        from kadvisor.training.fit import Interrupted, TrainingError

        state = self.state
        recipe = self._recipe([*state.kept, row] if row.round else [])
        state.pending = row
        if row.round:
            row.decision = "running"  # until _record decides
        if row.round == 0:
            state.tried.append(_key([]))
        elif not resume:
            state.tried.append(_key([*state.kept, row]))
        st.save(self.directory, state)
        run_path = self.directory / row.run
        started = time.perf_counter()
        try:
            metrics = self._fit(recipe, run_path, resume)
        except (Interrupted, KeyboardInterrupt):
            raise Interrupted(f"interrupted in round {row.round}; the finished rounds are in {self.directory}; "
                              f"continue with: kadvisor improve --resume {self.directory}") from None
        except (TrainingError, ModelError, DataError) as e:
            if row.round == 0:
                raise
            row.error = str(e).split(";")[0][:200]
            row.decision = FAILED
            metrics = st.read_json_or_empty(run_path / rundir.METRICS)
        row.seconds = round(time.perf_counter() - started, 1)
        self._record(row, metrics, run_path)

    def _fit(self, recipe: Recipe, run_path: Path, resume: bool) -> dict:
        """Trains the round into ``run_path`` (continuing it when resuming); its metrics."""
        from kadvisor.training.fit import fit
        from kadvisor.training.fit import resume as resume_run

        if run_path.exists():
            status = st.read_json_or_empty(run_path / rundir.METRICS).get("status")
            if resume and status == "finished":  # killed after the fit, before improve.json
                return rundir.read_json(run_path / rundir.METRICS)
            if resume and status in ("running", "interrupted") and (run_path / rundir.FINGERPRINT).is_file():
                return resume_run(run_path, quiet=True).metrics
            # Nothing a resume could use (killed before the run wrote its recipe and
            # fingerprint, or a failed fit): this round's own folder, started afresh.
            shutil.rmtree(run_path)
        return fit(_stop_hopeless(recipe), run_dir=run_path, quiet=True).metrics

    def _record(self, row: RoundRow, metrics: dict, run_path: Path) -> None:
        state = self.state
        incumbent = state.incumbent
        row.value = run_value(metrics, state.objective)
        test = (metrics.get("test") or {}).get(test_name(state.objective).removeprefix("test_"))
        row.test = float(test) if isinstance(test, (int, float)) else math.nan
        row.epochs = int(metrics.get("epochs") or len(rundir.read_history_rows(run_path / rundir.HISTORY)))
        # The margin is the incumbent's noise; round 0's own, for the record.
        row.noise = self._noise(run_path if incumbent is None else self.directory / incumbent.run)
        if incumbent is None:
            row.decision = BASELINE
        elif row.decision != FAILED:
            row.decision = decide(row.value, incumbent.value, row.noise, state.higher_is_better)
        state.rows.append(row)
        state.pending = None
        st.save(self.directory, state)
        self._write_outputs()
        self.say(round_line(row, state.objective, incumbent))

    def _noise(self, run_path: Path) -> float:
        from kadvisor.plotting import read_history_columns

        history = run_path / rundir.HISTORY
        curve = read_history_columns(history).get(self.state.objective, []) if history.exists() else []
        return noise(curve, self.state.min_noise, self.state.noise_epochs)

    # -- outputs ----------------------------------------------------------------------

    def _best_text(self) -> str:
        state = self.state
        return best_text(self.text, state.kept, state.incumbent, len(state.rows), state.objective,
                         str(self.directory))

    def _write_outputs(self) -> None:
        """rounds.csv, best.toml and improve.png from the finished rounds."""
        state = self.state
        if not state.rows:
            return
        write_rounds(self.directory / st.ROUNDS, state.rows, state.objective)
        rundir.write_text_atomic(self.directory / st.BEST, self._best_text())
        plot_rounds(self.directory / st.PLOT, state.rows, state.objective)

    def _result(self) -> ImproveResult:
        text = self._best_text()
        best = recipe_from_text(text, str(self.directory / st.BEST))
        return ImproveResult(self.directory, list(self.state.rows), self.state.incumbent, best, text,
                             self.state.stopped, self.state.objective)
