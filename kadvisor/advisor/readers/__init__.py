"""Readers: any training log → a `Run` (per-epoch curves, and the run's context).

One module per format, registered in `READERS` under the name ``--format-in`` takes:

    rundir        kadvisor run directory (history.csv + recipe.toml, data.json, metrics.json)
    csv           Keras CSVLogger file, pandas dump of History.history
    json          Keras History.history as JSON
    tensorboard   event files (Keras's TensorBoard callback, PyTorch/tensorboardX tags)
    lightning     PyTorch Lightning CSVLogger metrics.csv
    huggingface   Hugging Face Trainer trainer_state.json
    mlflow        MLflow local store (mlruns/<experiment>/<run>/metrics/<name>)

Without ``--format-in`` the format is chosen from what the target is (see `detect`).
Every reader maps metric names onto the advisor's (`roles`), reduces per-step values
to per-epoch or per-evaluation points (`align`), refuses a table without a loss or
metric column, and records what it did in ``Run.notes``. Files are read through
`safeio` (regular files only, bounded, encodings detected).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from kadvisor.advisor.readers import csvlog, history_json, huggingface, lightning, mlflow, rundir, tensorboard
from kadvisor.advisor.readers.csvlog import parse_csv_text
from kadvisor.advisor.readers.history_json import parse_json_text
from kadvisor.advisor.readers.roles import parse_columns_option
from kadvisor.advisor.readers.run import Run, finite_or_none, from_mapping
from kadvisor.advisor.readers.rundir import read_recipe_dict, read_run_dir
from kadvisor.advisor.readers.safeio import check_path, decode_text, read_bytes
from kadvisor.errors import InputError
from kadvisor.registry import Registry

__all__ = ["READERS", "Reader", "Run", "detect", "finite_or_none", "from_mapping", "parse_columns_option",
           "parse_csv_text", "parse_json_text", "read_log", "read_recipe_dict", "read_run_dir", "read_target"]


@dataclass(frozen=True)
class Reader:
    """One log format.

    Attributes:
        name: The ``--format-in`` name.
        what: One line for ``--help`` and messages.
        detect: ``(path, head) -> bool``; ``head`` is the first 4 KiB of a file as text
            ("" for a directory).
        read: ``(path, columns) -> Run``; ``columns`` maps roles to logged names.
    """

    name: str
    what: str
    detect: Callable[[str, str], bool]
    read: Callable[..., Run]


READERS: Registry = Registry("log format")
for _reader in (
    Reader("rundir", "kadvisor run directory", rundir.detect, rundir.read_run_dir),
    Reader("csv", "Keras CSVLogger file or pandas dump of History.history", csvlog.detect, csvlog.read),
    Reader("json", "Keras History.history as JSON", history_json.detect, history_json.read),
    Reader("tensorboard", "TensorBoard event files", lambda p, h: tensorboard.detect(p), tensorboard.read),
    Reader("lightning", "PyTorch Lightning metrics.csv", lightning.detect, lightning.read),
    Reader("huggingface", "Hugging Face trainer_state.json", huggingface.detect, huggingface.read),
    Reader("mlflow", "MLflow local store (mlruns)", mlflow.detect, mlflow.read),
):
    READERS.add(_reader.name, _reader)

# Most specific first; csv takes any file nothing else claimed.
_DIRECTORY_ORDER = ("rundir", "huggingface", "lightning", "mlflow", "tensorboard")
_FILE_ORDER = ("tensorboard", "huggingface", "lightning", "json", "csv")


def detect(target: str) -> Reader:
    """The reader for ``target``, chosen from what it is.

    Raises:
        InputError: Missing, a symbolic-link loop, or a directory no reader knows.
    """
    st = check_path(target)
    if os.path.isdir(target):
        for name in _DIRECTORY_ORDER:
            if READERS.get(name).detect(target, ""):
                return READERS.get(name)
        raise InputError(f"{target}: not a kadvisor run directory nor a known log directory (no history.csv, "
                         f"TensorBoard event files, metrics.csv, trainer_state.json or MLflow run found)")
    del st
    if tensorboard.is_event_file(target):
        return READERS.get("tensorboard")
    head = decode_text(read_bytes(target, 4096, head=True), target)
    for name in _FILE_ORDER[1:]:
        if READERS.get(name).detect(target, head):
            return READERS.get(name)
    return READERS.get("csv")  # pragma: no cover - csv detects everything


def read_target(target: str, fmt: str | None = None, columns: dict | str | None = None) -> Run:
    """Reads whatever ``kadvisor diagnose TARGET`` was given.

    Args:
        target: A run directory, a log file or a log directory of any registered format.
        fmt: Force this reader (``--format-in``) instead of detecting one.
        columns: Role → logged name overrides (``--columns``), as a dict or as
            ``"loss=train/loss,val_loss=valid/loss"``.

    Returns:
        The run, with ``notes`` on how it was read.

    Raises:
        InputError: If the target does not exist or is not a training log.
    """
    if isinstance(columns, str):
        columns = parse_columns_option(columns)
    if fmt is None:
        reader = detect(target)
    else:
        try:
            reader = READERS.get(fmt)
        except KeyError as exc:
            raise InputError(f"--format-in: {exc.args[0]}") from None
        check_path(target)
    run = reader.read(target, columns or None)
    run.format = reader.name
    return run


def read_log(path: str) -> Run:
    """Reads a CSV or JSON training log file (format sniffed from the content)."""
    return read_target(path)
