"""The run directory: the contract between `fit`, `diagnose`, `tune` and the user.

    runs/<name>-<YYYYmmdd-HHMMSS>/
      recipe.toml   the fully resolved recipe (every default written out)
      history.csv   one row per epoch, Keras CSVLogger columns + lr, stage, seconds
      data.json     dataset facts: sizes, classes, per-class counts of every split
      env.json      versions, devices, strategy, seed, command line
      metrics.json  best epoch, final and best metrics, test metrics
      model.keras   best model (Keras format, loads with safe_mode)
      curves.png    loss and metric, train and validation, on one figure, stages marked
      diagnosis.json  written by `kadvisor diagnose`
      checkpoint/   weights + optimizer state of the last epoch, for `fit --resume`
      tensorboard/  TensorBoard logs, one run per stage (train.tensorboard); the
                    findings of `kadvisor diagnose` as text under tensorboard/diagnosis/
      fingerprint.json  what the run was created with, checked by `fit --resume`

Every file except history.csv is replaced atomically (written to a temporary file in
the same directory, then renamed), so a killed process leaves the previous complete
version or none — never half a file. history.csv is appended one fsynced row per epoch;
a row cut short by a kill is dropped by `read_history_rows` and by a resume.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

RECIPE = "recipe.toml"
HISTORY = "history.csv"
DATA = "data.json"
ENV = "env.json"
METRICS = "metrics.json"
MODEL = "model.keras"
BACKBONE_WEIGHTS = "backbone.weights.h5"
CURVES = "curves.png"
DIAGNOSIS = "diagnosis.json"
CHECKPOINT = "checkpoint"
FINGERPRINT = "fingerprint.json"
KFOLD = "kfold.json"  # in the parent directory of a K-fold cross-validation
TENSORBOARD = "tensorboard"  # TensorBoard logs: tensorboard/<stage>/{train,validation}/
# What kadvisor writes and reads in a run directory (or a K-fold parent); no command
# writes a user-named output over one of these (kadvisor/outputs.py).
CONTRACT = (RECIPE, HISTORY, DATA, ENV, METRICS, MODEL, BACKBONE_WEIGHTS, CURVES, DIAGNOSIS,
            CHECKPOINT, FINGERPRINT, KFOLD)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()


def create(root: str | os.PathLike, name: str) -> Path:
    """Creates a new, empty run directory ``root/<name>-<timestamp>`` and returns it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = root / (f"{name}-{stamp}" if n == 0 else f"{name}-{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a run directory under {root}")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old or the new file, never a mix."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600 files; run files are for sharing
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Atomic text write (UTF-8)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Atomic JSON write, indented, with NaN/inf written as null."""
    write_text_atomic(path, json.dumps(_finite(obj), indent=2, sort_keys=False) + "\n")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return _finite(obj.item())
    return obj


def read_json(path: str | os.PathLike) -> dict:
    """Reads a JSON file of a run directory."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_model_atomic(model, path: str | os.PathLike) -> None:
    """Saves a Keras model to ``path`` (``.keras``) via a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        if path.name.endswith(".weights.h5"):
            os.unlink(tmp)
            tmp = tmp[: -len(path.suffix)] + ".weights.h5"
            model.save_weights(tmp)
        else:
            model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# Columns every kadvisor history has beside Keras's own logs; they go last.
HISTORY_EXTRA = ("lr", "stage", "seconds")


def history_columns(keys) -> list[str]:
    """Orders history columns: ``epoch``, the metrics sorted (as CSVLogger), then extras."""
    metrics = sorted(k for k in keys if k != "epoch" and k not in HISTORY_EXTRA)
    return ["epoch", *metrics, *(k for k in HISTORY_EXTRA if k in keys)]


def read_history_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """Reads history.csv as string rows; drops a last row cut short by a killed process."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(complete))
    header = reader.fieldnames or []
    return [r for r in reader if len(r) == len(header) and None not in r.values()]


def write_history_rows(path: str | os.PathLike, rows: list[dict]) -> None:
    """Replaces history.csv atomically with ``rows`` (used when the columns change)."""
    keys = dict.fromkeys(k for row in rows for k in row)
    write_text_atomic(path, _csv_text(history_columns(keys), rows, header=True))


def append_history_row(path: str | os.PathLike, row: dict) -> None:
    """Appends one epoch to history.csv and makes it durable before returning.

    Args:
        path: The history file; created with a header if missing.
        row: Column → value; a column the file does not have yet rewrites the file
            with the new header (rare: a later stage logging another metric).
    """
    path = Path(path)
    header = _header(path)
    if header is None or not set(row) <= set(header):
        write_history_rows(path, [*read_history_rows(path), row])
        return
    with open(path, "a", newline="", encoding="utf-8") as f:
        f.write(_csv_text(header, [row], header=False))
        f.flush()
        os.fsync(f.fileno())


def _header(path: Path) -> list[str] | None:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            first = f.readline()
    except FileNotFoundError:
        return None
    return next(csv.reader([first]), None) if first.endswith("\n") else None


def _csv_text(columns: list[str], rows: list[dict], header: bool) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, restval="", extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# Recipe fields that decide what the data, the model and the checkpoint's variables are:
# resuming with any of them changed would train something else into this directory.
# (train.*, schedule.*, advisor.* ... are not checked.)
_FINGERPRINTED = ("seed", "data.", "model.", "validation.", "optimizer.name", "loss.name", "stages")


def _fingerprinted(recipe: dict) -> dict:
    flat: dict = {}

    def walk(prefix: str, table: dict) -> None:
        for key, value in table.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and path != "stages":
                walk(path + ".", value)
            elif path == "stages" or path.startswith(_FINGERPRINTED) and not path.startswith("data.augment."):
                flat[path] = value

    walk("", recipe)
    return json.loads(json.dumps(flat, sort_keys=True))  # plain JSON values, as read back


def write_fingerprint(path: str | os.PathLike, recipe: dict, data: dict) -> str:
    """Writes what a new run was created with; returns its id (state.json repeats it).

    Args:
        path: The run directory.
        recipe: The resolved recipe as nested tables (``Recipe.to_dict()``).
        data: The contents of data.json.
    """
    run_id = uuid.uuid4().hex
    write_json_atomic(Path(path) / FINGERPRINT, {"run_id": run_id, "recipe": _fingerprinted(recipe),
                                                 "data": json.loads(json.dumps(data))})
    return run_id


def fingerprint_mismatch(path: str | os.PathLike, recipe: dict, data: dict | None = None,
                         run_id: str | None = None) -> str | None:
    """Says what no longer matches the run's fingerprint, or None when everything does.

    Args:
        path: The run directory.
        recipe: Its recipe.toml now, as nested tables.
        data: data.json as rebuilt now from that recipe's source (None: not checked;
            the data.json file is checked either way).
        run_id: The id in the checkpoint's state.json ('' when it has none; None when
            nothing was committed yet).
    """
    try:
        saved = read_json(Path(path) / FINGERPRINT)
    except (OSError, ValueError):
        return f"{FINGERPRINT} is missing or unreadable, so nothing shows this directory's files belong together"
    found = _difference(_fingerprinted(recipe), saved.get("recipe", {}))
    if found:
        key, now, then = found
        return f"{RECIPE} has {key} = {_short(now)} but the run was created with {_short(then)}"
    old = saved.get("data", {})
    try:
        on_disk = read_json(Path(path) / DATA)
    except (OSError, ValueError):
        return f"{DATA} is missing or unreadable"
    for label, facts in ((DATA, on_disk), ("the data its recipe reads now", data)):
        if facts is None:
            continue
        found = _difference(json.loads(json.dumps(facts)), old)
        if found:
            key, now_value, then = found
            return f"{label} has {key} = {_short(now_value)} but {DATA} at creation had {_short(then)}"
    if run_id is not None and run_id != saved.get("run_id"):
        return (f"{CHECKPOINT}/state.json belongs to another run (run id {run_id or 'none'}, "
                f"this run is {saved.get('run_id')})")
    return None


def _difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted key where two JSON values differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b else (prefix.rstrip(".") or "(the whole file)", a, b)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
