"""kadvisor run directories: ``history.csv`` plus the recipe, data facts and metrics.

A run that failed before its first epoch has no history, only ``metrics.json`` with
``{"status": "failed", "error": ...}``: the reader says so, with the error, instead of
calling the directory "not a run".
"""

from __future__ import annotations

import json
import os
import tomllib

from kadvisor import rundir
from kadvisor.advisor.readers.csvlog import parse_csv_text
from kadvisor.advisor.readers.run import Run
from kadvisor.advisor.readers.safeio import read_bytes, read_text
from kadvisor.errors import InputError


def is_run_dir(path: str) -> bool:
    """A directory with ``history.csv``, or with ``metrics.json`` and ``recipe.toml``."""
    has = lambda name: os.path.isfile(os.path.join(path, name))  # noqa: E731
    return os.path.isdir(path) and (has(rundir.HISTORY) or (has(rundir.METRICS) and has(rundir.RECIPE)))


def read_json_file(path: str) -> dict | None:
    """A JSON object file, or None when absent or not an object.

    Raises:
        InputError: If it exists but is not valid JSON.
    """
    if not os.path.exists(path):
        return None
    try:
        obj = json.loads(read_text(path))
    except ValueError as exc:
        raise InputError(f"{path}: invalid JSON ({exc})") from None
    return obj if isinstance(obj, dict) else None


def read_recipe_dict(path: str) -> dict:
    """Reads a TOML recipe into a plain dict (no validation, no TensorFlow).

    Raises:
        InputError: If the file cannot be read or is not valid TOML.
    """
    try:
        return tomllib.loads(read_text(path).removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML ({exc})") from None


def read_context(run: Run, path: str) -> Run:
    """Attaches the run directory ``path``'s recipe, data facts and metrics to ``run``."""
    run.run_dir = path
    recipe_path = os.path.join(path, rundir.RECIPE)
    if os.path.isfile(recipe_path):
        run.recipe = read_recipe_dict(recipe_path)
        run.recipe_path = recipe_path
    run.data = read_json_file(os.path.join(path, rundir.DATA))
    run.metrics = read_json_file(os.path.join(path, rundir.METRICS))
    status = (run.metrics or {}).get("status")
    if status in ("failed", "running", "interrupted"):
        error = (run.metrics or {}).get("error")
        run.notes.append(f"the run's status is '{status}'" + (f": {error}" if error else ""))
    return run


def read_run_dir(path: str, columns: dict | None = None) -> Run:
    """Reads a kadvisor run directory: history plus recipe, data and metrics if present.

    Raises:
        InputError: Not a run directory; a run that failed before its first epoch
            (with its error); an unreadable history or recipe.
    """
    history = os.path.join(path, rundir.HISTORY)
    if not os.path.isfile(history) or not read_bytes(history).strip():
        metrics = read_json_file(os.path.join(path, rundir.METRICS)) or {}
        if metrics.get("status") in ("failed", "running", "interrupted"):
            error = metrics.get("error") or "no error recorded"
            raise InputError(f"{path}: the run stopped before its first epoch ended "
                             f"(status '{metrics['status']}': {error}); no curves to diagnose")
        raise InputError(f"{path}: not a kadvisor run directory (no {rundir.HISTORY})")
    run = parse_csv_text(read_text(history), history, columns)
    run.format = "rundir"
    return read_context(run, path)


def detect(path: str, head: str) -> bool:
    return is_run_dir(path)
