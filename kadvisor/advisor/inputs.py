"""Readers for training logs: run directories, Keras ``CSVLogger`` files, History JSON.

Everything the advisor reads comes in through `read_target`, which returns a `Run`:
the per-epoch columns as float arrays (NaN where a value is missing or unparsable),
text columns (such as ``stage``) as strings, and — for a kadvisor run directory — the
resolved recipe, dataset facts and metrics. Real logs are messy (Windows line endings,
blank lines, ``;`` or tab separators, ``nan``/``inf`` values), so the readers accept all
of that; anything that is not a training log raises `kadvisor.errors.InputError` with a
one-line message.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from kadvisor import rundir
from kadvisor.errors import InputError

HISTORY_FILE = rundir.HISTORY
RECIPE_FILE = rundir.RECIPE
DATA_FILE = rundir.DATA
METRICS_FILE = rundir.METRICS
DIAGNOSIS_FILE = rundir.DIAGNOSIS

_MAX_BYTES = 64 * 1024 * 1024  # a training log is small; refuse to slurp huge files


@dataclass
class Run:
    """One training run as the advisor sees it.

    Attributes:
        columns: Column name → float array, one value per epoch (NaN when missing).
        text: Column name → list of strings for non-numeric columns (e.g. ``stage``).
        epochs: Epoch numbers as logged (0-based in Keras logs).
        source: Where the run came from, for messages.
        run_dir: The run directory, when the target was one.
        recipe: The resolved recipe as a plain dict, when known.
        recipe_path: The recipe file the dict came from, when known.
        data: The ``data.json`` facts, when known.
        metrics: The ``metrics.json`` content, when known.
        nonfinite: Column name → first epoch index logged as NaN/inf (explicit values,
            not missing cells).
    """

    columns: dict[str, np.ndarray]
    text: dict[str, list[str]] = field(default_factory=dict)
    epochs: np.ndarray | None = None
    source: str = "<memory>"
    run_dir: str | None = None
    recipe: dict | None = None
    recipe_path: str | None = None
    data: dict | None = None
    metrics: dict | None = None
    nonfinite: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs is None:
            self.epochs = np.arange(self.length, dtype=float)

    @property
    def length(self) -> int:
        """Number of epochs logged."""
        lengths = [len(v) for v in self.columns.values()] + [len(v) for v in self.text.values()]
        return max(lengths, default=0)

    def select(self, rows: list[int]) -> "Run":
        """The same run restricted to some epochs (e.g. one training stage)."""
        idx = np.asarray(rows, dtype=int)
        return Run(
            columns={k: v[idx] for k, v in self.columns.items()},
            text={k: [v[i] for i in rows] for k, v in self.text.items()},
            epochs=np.asarray(self.epochs)[idx], source=self.source, run_dir=self.run_dir,
            recipe=self.recipe, recipe_path=self.recipe_path, data=self.data, metrics=self.metrics,
            nonfinite={k: rows.index(i) for k, i in self.nonfinite.items() if i in rows},
        )


def from_mapping(history: Mapping[str, Any], source: str = "<memory>") -> Run:
    """Builds a `Run` from a Keras ``History.history``-like mapping of lists.

    Args:
        history: Column name → sequence of per-epoch values. ``None`` and strings that
            are not numbers become NaN, except for columns where no value is numeric,
            which are kept as text (e.g. ``stage``).
        source: Name used in messages.

    Returns:
        The run; columns shorter than the longest are padded with NaN.

    Raises:
        InputError: If ``history`` is not a mapping of sequences.
    """
    if not isinstance(history, Mapping):
        raise InputError(f"{source}: expected a mapping of metric name to values, got {type(history).__name__}")
    raw: dict[str, list] = {}
    for name, values in history.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            values = [values]
        raw[str(name)] = list(values)
    return _build(raw, source)


def _build(raw: dict[str, list], source: str) -> Run:
    length = max((len(v) for v in raw.values()), default=0)
    columns: dict[str, np.ndarray] = {}
    text: dict[str, list[str]] = {}
    epochs = None
    nonfinite: dict[str, int] = {}
    for name, values in raw.items():
        numbers = [_to_float(v) for v in values]
        bad = [i for i, x in enumerate(numbers) if x is not None and not math.isfinite(x)]
        if bad:
            nonfinite[name] = bad[0]
        numeric = [x for x in numbers if x is not None]
        words = [v for v in values if isinstance(v, str) and v.strip()]
        if words and not numeric and name != "epoch":
            text[name] = [str(v) for v in values] + [""] * (length - len(values))
            continue
        array = np.full(length, np.nan)
        array[: len(numbers)] = [np.nan if x is None else x for x in numbers]
        if name == "epoch":
            epochs = array
        else:
            columns[name] = array
    if epochs is not None and np.isnan(epochs).any():
        epochs = None  # a broken epoch column is worse than none
    if not columns:
        raise InputError(f"{source}: no numeric metric columns (expected e.g. 'loss', 'val_loss')")
    return Run(columns=columns, text=text, epochs=epochs, source=source, nonfinite=nonfinite)


def _to_float(value: Any) -> float | None:
    """Parses one cell: numbers, 'nan', 'inf', '-inf'; None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if value is None:
        return None
    try:
        text = str(value).strip().strip('"').strip("'")
        if text.startswith("[") and text.endswith("]"):  # "[0.5]" from some loggers
            text = text[1:-1]
        return float(text)
    except (TypeError, ValueError):
        return None


def parse_csv_text(text: str, source: str = "<text>") -> Run:
    """Parses a ``CSVLogger`` file: comma, tab or semicolon separated, header first.

    Args:
        text: The file content.
        source: Name used in messages.

    Returns:
        The run.

    Raises:
        InputError: If there is no header with at least one metric column.
    """
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InputError(f"{source}: empty file, expected a CSV training log with a header row")
    header_line = lines[0]
    delimiter = max((";", "\t", ","), key=header_line.count)
    if header_line.count(delimiter) == 0 and len(lines) == 1:
        raise InputError(f"{source}: not a training log (one line without separators)")
    header = [h.strip().strip('"').strip("'") for h in header_line.split(delimiter)]
    if any(_to_float(h) is not None for h in header if h):
        raise InputError(f"{source}: the first row must be a header of column names, got numbers")
    if not all(h and h.isprintable() for h in header):
        raise InputError(f"{source}: not a training log (empty or unreadable column names)")
    raw: dict[str, list] = {h: [] for h in header}
    rows = lines[1:]
    if len(rows) > 1 and len(rows[-1].split(delimiter)) < len(header):
        rows = rows[:-1]  # the last row was cut short (a training process killed mid-write)
    if not rows:
        raise InputError(f"{source}: a header but no epochs; expected one row per epoch")
    for line in rows:
        cells = line.split(delimiter)
        for i, name in enumerate(header):
            raw[name].append(cells[i] if i < len(cells) else None)
    return _build(raw, source)


def parse_json_text(text: str, source: str = "<text>") -> Run:
    """Parses a Keras ``History.history`` JSON object (optionally under ``"history"``).

    Also accepts a list of per-epoch objects (``[{"loss": ..}, ...]``).

    Raises:
        InputError: If the JSON is invalid or not shaped like a history.
    """
    try:
        obj = json.loads(text, parse_constant=lambda c: float(c))
    except (json.JSONDecodeError, ValueError) as exc:
        raise InputError(f"{source}: invalid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if isinstance(obj, dict) and isinstance(obj.get("history"), dict):
        obj = obj["history"]
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        keys = list(dict.fromkeys(k for r in obj for k in r))
        obj = {k: [r.get(k) for r in obj] for k in keys}
    if not isinstance(obj, dict) or not obj:
        raise InputError(f"{source}: expected a JSON object of metric name to per-epoch lists")
    if not all(isinstance(v, list) for v in obj.values()):
        raise InputError(f"{source}: expected a JSON object of metric name to per-epoch lists")
    return from_mapping(obj, source)


def _read_text(path: str) -> str:
    try:
        size = os.path.getsize(path)
        if size > _MAX_BYTES:
            raise InputError(f"{path}: file too large for a training log ({size} bytes)")
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"\x00" in data[:4096]:
        raise InputError(f"{path}: binary file, expected a CSV or JSON training log")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_log(path: str) -> Run:
    """Reads a CSV or JSON training log file (format sniffed from the content)."""
    text = _read_text(path)
    if text.lstrip().startswith(("{", "[")):
        return parse_json_text(text, path)
    return parse_csv_text(text, path)


def _read_json_file(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: invalid JSON ({exc})") from None
    return obj if isinstance(obj, dict) else None


def read_recipe_dict(path: str) -> dict:
    """Reads a TOML recipe into a plain dict (no validation, no TensorFlow).

    Raises:
        InputError: If the file cannot be read or is not valid TOML.
    """
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML ({exc})") from None


def read_run_dir(path: str) -> Run:
    """Reads a kadvisor run directory: history plus recipe, data and metrics if present."""
    history = os.path.join(path, HISTORY_FILE)
    if not os.path.isfile(history):
        raise InputError(f"{path}: not a kadvisor run directory (no {HISTORY_FILE})")
    run = read_log(history)
    run.run_dir = path
    recipe_path = os.path.join(path, RECIPE_FILE)
    if os.path.isfile(recipe_path):
        run.recipe = read_recipe_dict(recipe_path)
        run.recipe_path = recipe_path
    run.data = _read_json_file(os.path.join(path, DATA_FILE))
    run.metrics = _read_json_file(os.path.join(path, METRICS_FILE))
    return run


def read_target(target: str) -> Run:
    """Reads whatever ``kadvisor diagnose TARGET`` was given.

    Args:
        target: A run directory, a CSV log or a History JSON file.

    Returns:
        The run.

    Raises:
        InputError: If the target does not exist or is not a training log.
    """
    if os.path.isdir(target):
        return read_run_dir(target)
    if not os.path.exists(target):
        raise InputError(f"{target}: no such file or directory")
    return read_log(target)


def finite_or_none(value: float) -> float | None:
    """JSON-safe float: None for NaN/inf."""
    return float(value) if value is not None and math.isfinite(value) else None
