"""Files a command writes at a path the user named: checked first, then written atomically.

Every such file (``diagnose --apply`` and ``--plot``, ``init -o``) goes through
`check_output` before the command does any work, and is written by `write_text` (or
`kadvisor.plotting.save_figure`, atomic too). The rules, the same for every command:

- an existing file is replaced only with ``--force``;
- the command's own inputs (the log or run being diagnosed, the recipe being patched)
  are never written over, even with ``--force``;
- a run directory's contract files (`rundir.CONTRACT`: recipe.toml, history.csv,
  metrics.json, ... in a folder holding metrics.json, history.csv or kfold.json) are
  never written over, even with ``--force``: `diagnose`, `evaluate` and `fit --resume`
  read them. Other new files inside a run directory (``--plot RUN/advice.png``) are fine;
- a folder that does not exist, or a path that is a folder, is a one-line error;
- the file is written to a temporary file beside it and renamed into place, so a failure
  or a kill leaves the old file or none, never half of one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from kadvisor import rundir
from kadvisor.errors import InputError

# Files whose presence makes a folder a run directory (or a K-fold parent) to protect.
_RUN_MARKERS = (rundir.METRICS, rundir.HISTORY, rundir.KFOLD)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # b missing or unreadable: compare the resolved names instead
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(path: str | os.PathLike, *, option: str, force: bool = False,
                 inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Checks that ``path`` may be written, before any work is done.

    Args:
        path: Where the user asked the file to go.
        option: How the user named it (``"--apply"``, ``"-o"``), for the message.
        force: The user passed ``--force``: an existing file may be replaced.
        inputs: The command's input files (None entries are skipped); a path that is
            one of them (after following links) is refused.

    Returns:
        ``path`` as a `Path`.

    Raises:
        InputError: one line naming the option, the path and what was expected.
    """
    path = Path(path)
    where = f"{option} {path}"
    if path.is_dir():
        raise InputError(f"{where}: is a folder; expected a file name")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{where}: folder '{parent}' does not exist; expected an existing folder "
                         f"(create it first)")
    for given in inputs:
        if given is None:
            continue
        if _same_file(path, Path(given)):
            raise InputError(f"{where}: is this command's own input '{given}'; expected another "
                             f"file (kadvisor never writes over what it reads)")
    if path.name in rundir.CONTRACT and any((parent / m).exists() for m in _RUN_MARKERS):
        raise InputError(f"{where}: is the run directory file {path.name} of '{parent}'; expected a "
                         f"path outside the run's own files (diagnose, evaluate and --resume read them)")
    if (path.exists() or path.is_symlink()) and not force:
        raise InputError(f"{where}: exists; use --force to overwrite it, or choose another file")
    return path


def write_error(path: str | os.PathLike, exc: OSError) -> InputError:
    """The one-line error for an OS error while writing ``path``."""
    return InputError(f"{path}: cannot write ({exc.strerror or exc}); expected a writable file path")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes UTF-8 ``text`` to ``path`` atomically; an OS error becomes one line."""
    try:
        rundir.write_text_atomic(path, text)
    except OSError as e:
        raise write_error(path, e) from None
