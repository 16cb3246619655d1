"""``kadvisor diagnose``: the command body, called by `kadvisor.cli`.

    diagnose_command(target, fmt="text", plot=None, apply=None, action=1,
                     recipe=None, echo=print, colour=False) -> int

does all the work and returns the exit code (0); bad input raises `KadvisorError`
subclasses (`InputError`, `RecipeError`) for the CLI to print as one line. It never
imports TensorFlow or Keras.

For a run directory it also writes ``diagnosis.json`` there (atomically), and the
findings as a TensorBoard text summary under ``tensorboard/diagnosis/``; a K-fold
parent (``kfold.json``) is diagnosed fold by fold with a consensus view
(`kadvisor.advisor.kfold`), and every fold and the parent get a ``diagnosis.json``. With
``apply``, the recipe — ``recipe`` if given (the user's original file keeps their
comments best), else ``RUN_DIR/recipe.toml`` — is written to ``apply`` with action
number ``action`` (1 = the top action) patched in, and a unified diff is echoed.
"""

from __future__ import annotations

import difflib
import json
import os
from typing import Callable

from kadvisor import outputs, rundir
from kadvisor.advisor.actions import concretize
from kadvisor.advisor.engine import Diagnosis, diagnose
from kadvisor.advisor.findings import Action, Finding
from kadvisor.advisor.inputs import read_recipe_dict, read_target
from kadvisor.advisor.kfold import KFoldDiagnosis, diagnose_kfold, is_kfold_parent
from kadvisor.advisor.kfold import render as render_kfold
from kadvisor.advisor.readers.summaries import write_findings_summary
from kadvisor.advisor.report import FORMATS, describe_action, numbered_actions, render
from kadvisor.errors import InputError, RecipeError


def applicable_actions(d: "Diagnosis | KFoldDiagnosis", current: dict | None) -> list[tuple[Finding, Action]]:
    """The ranked actions of ``d`` as concrete changes of the recipe ``current``.

    ``--action N`` of ``diagnose --apply`` and each round of ``kadvisor improve`` count
    in this list; an action that would change nothing in ``current`` is left out.
    """
    choices = []
    for finding, act in numbered_actions(d):
        # Already concrete when the run knew its recipe; else compute it for this one.
        concrete = act if act.change else concretize(act, current)
        if concrete is not None:
            choices.append((finding, concrete))
    return choices


def apply_action(d: "Diagnosis | KFoldDiagnosis", recipe_path: str, out_path: str, number: int = 1) -> tuple[str, str]:
    """Writes ``recipe_path`` with action ``number`` applied to ``out_path``.

    Returns:
        (description of the applied change, unified diff).

    Raises:
        InputError: If there is no such action or the recipe cannot be read.
        RecipeError: If the written recipe does not validate.
    """
    from kadvisor.recipe.patch import apply_patch_to_toml

    try:
        with open(recipe_path, encoding="utf-8-sig") as fh:
            text = fh.read()
    except OSError as exc:
        raise InputError(f"{recipe_path}: cannot read ({exc.strerror or exc})") from None
    choices = applicable_actions(d, read_recipe_dict(recipe_path))
    if not choices:
        raise InputError("no action to apply: the diagnosis found nothing to change in this recipe")
    if not 1 <= number <= len(choices):
        raise InputError(f"--action must be between 1 and {len(choices)}, got {number}")
    finding, act = choices[number - 1]
    try:
        new_text = apply_patch_to_toml(text, act.patch, comment=f"kadvisor diagnose: {finding.rule}")
    except ValueError as exc:
        raise RecipeError(f"{recipe_path}: {exc}") from None
    from kadvisor.recipe import recipe_from_text

    recipe_from_text(new_text, out_path)  # raises RecipeError if the result is invalid
    outputs.write_text(out_path, new_text)
    diff = "".join(difflib.unified_diff(
        text.splitlines(keepends=True), new_text.splitlines(keepends=True), recipe_path, out_path))
    return f"{finding.rule}: {describe_action(act)}", diff


_NEEDS_RECIPE = "--apply needs a recipe: diagnose a run directory or pass --recipe FILE"


def diagnose_command(
    target: str,
    fmt: str = "text",
    plot: str | None = None,
    apply: str | None = None,
    action: int = 1,
    recipe: str | None = None,
    echo: Callable[[str], None] = print,
    colour: bool = False,
    force: bool = False,
    format_in: str | None = None,
    columns: str | None = None,
) -> int:
    """Runs ``kadvisor diagnose TARGET``.

    Args:
        target: Run directory, K-fold parent directory, CSVLogger file or History JSON.
        fmt: ``"text"``, ``"json"`` or ``"markdown"``.
        plot: Write the annotated curves to this image file.
        apply: Write the patched recipe here.
        action: Which action to apply (1 = top-ranked).
        recipe: Recipe file to patch (and to read current values from) instead of the
            run directory's ``recipe.toml``.
        echo: Prints one block of text (the CLI passes ``click.echo``).
        colour: ANSI colours in the text report (the CLI passes "stdout is a TTY").
        format_in: Read the target with this reader (``--format-in``) instead of
            detecting its format.
        columns: Role mapping overrides, ``"loss=train/loss,val_loss=valid/loss"``.
        force: ``plot`` and ``apply`` may replace existing files (never the target, the
            recipe being patched, or a run directory's own files: `kadvisor.outputs`).

    Returns:
        The exit code, 0.

    Raises:
        InputError: Unreadable target, unknown format, nothing to apply.
        RecipeError: The patched recipe does not validate.
    """
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    _check_outputs(target, recipe, plot, apply, force)
    if is_kfold_parent(target) and format_in is None:
        d = diagnose_kfold(target)
        echo(render_kfold(d, fmt, colour=colour and fmt == "text"))
        for name, fold in d.folds.items():  # names were confined to the parent when read
            _write_diagnosis(os.path.join(target, name), fold.to_json())
        _write_diagnosis(target, d.to_json())
        recipe_path = recipe or d.recipe_path
        if plot:
            from kadvisor.advisor.plot import plot_kfold

            _plot(plot_kfold, d, plot)
    else:
        run = read_target(target, format_in, columns)
        if recipe is not None:
            run.recipe = read_recipe_dict(recipe)
            run.recipe_path = recipe
        if apply and run.recipe_path is None:  # known now: say so before any report
            raise InputError(_NEEDS_RECIPE)
        d = diagnose(run)
        echo(_with_reading_notes(render(d, fmt, colour=colour and fmt == "text"), run, fmt))
        if run.run_dir is not None:
            _write_diagnosis(run.run_dir, d.to_json())
            write_findings_summary(run.run_dir, render(d, "markdown"), run)
        recipe_path = run.recipe_path
        if plot:
            from kadvisor.advisor.plot import plot_diagnosis

            _plot(plot_diagnosis, d, plot)
    if apply:
        if recipe_path is None:
            raise InputError(_NEEDS_RECIPE)
        what, diff = apply_action(d, recipe_path, apply, action)
        if fmt == "text":
            echo(f"applied {what}\n{diff}".rstrip())
    return 0


def _check_outputs(target: str, recipe: str | None, plot: str | None, apply: str | None, force: bool) -> None:
    """Refuses unwritable or protected output paths before anything is read or written."""
    if plot and apply and os.path.abspath(plot) == os.path.abspath(apply):
        raise InputError(f"--plot and --apply both name {plot}; expected two different files")
    for path, option in ((plot, "--plot"), (apply, "--apply")):
        if path:
            outputs.check_output(path, option=option, force=force, inputs=(target, recipe))
    if plot:
        from kadvisor.plotting import image_format

        image_format(plot)
    if os.path.isdir(os.path.join(target, rundir.DIAGNOSIS)):
        raise InputError(f"{os.path.join(target, rundir.DIAGNOSIS)}: is a folder; expected the file "
                         f"diagnose writes its findings to (move the folder away)")


def _plot(draw, d, path: str) -> None:
    try:
        draw(d, path)
    except OSError as e:
        raise outputs.write_error(path, e) from None


def _with_reading_notes(report: str, run, fmt: str) -> str:
    """The report with how the log was read: its format and the readers' notes."""
    if fmt == "json":
        obj = json.loads(report)
        obj["input"] = {"format": run.format, "notes": list(run.notes)}
        return json.dumps(obj, indent=2, ensure_ascii=False)
    if not run.notes:
        return report
    if fmt == "markdown":
        return report.rstrip("\n") + "\n\n" + "\n".join(f"- read as {run.format}: {n}" for n in run.notes) + "\n"
    return "\n".join(f"read as {run.format}: {n}" for n in run.notes) + "\n" + report


def _write_diagnosis(run_dir: str, text: str) -> None:
    outputs.write_text(os.path.join(run_dir, rundir.DIAGNOSIS), text + "\n")
