"""TensorBoard event files: Keras's ``TensorBoard`` callback and PyTorch/tensorboardX tags.

The target is one event file or a directory searched for them (a few levels deep).
Event files are grouped into runs the way TensorBoard shows them: files in ``train/``
and ``validation/`` (Keras's layout) belong to their parent, whose tags they prefix;
any other directory is a run of its own. Several runs whose steps follow one another
(kadvisor's ``tensorboard/<stage>/`` directories) are read as the stages of one run;
runs that overlap are separate experiments, and the reader asks which one to diagnose.
A kadvisor run directory read with ``--format-in tensorboard`` keeps its recipe and
data facts, so the findings can be compared with those read from ``history.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kadvisor import rundir
from kadvisor.advisor.readers.align import align, epoch_labels
from kadvisor.advisor.readers.events import scalars
from kadvisor.advisor.readers.roles import canonical_columns
from kadvisor.advisor.readers.run import Run, build
from kadvisor.advisor.readers.safeio import check_path, read_bytes
from kadvisor.errors import InputError

TENSORBOARD_DIR = rundir.TENSORBOARD  # where `kadvisor fit` writes them in a run directory
_SPLIT_DIRS = {"train", "training", "validation", "val", "valid", "eval", "evaluation"}
_MAX_DEPTH, _MAX_FILES = 6, 2000
_MAX_EVENT_BYTES = 256 * 1024 * 1024


def is_event_file(path: str) -> bool:
    """Whether ``path`` is named like an event file."""
    return "tfevents" in os.path.basename(path)


def event_files(target: str) -> list[str]:
    """Event files at ``target`` (a file, or a directory searched a few levels deep)."""
    if not os.path.isdir(target):
        return [target] if is_event_file(target) else []
    found = []
    base_depth = target.rstrip(os.sep).count(os.sep)
    for root, dirs, files in os.walk(target):  # followlinks=False: no symlink loops
        if root.count(os.sep) - base_depth >= _MAX_DEPTH:
            dirs[:] = []
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if is_event_file(f)]
        if len(found) > _MAX_FILES:
            raise InputError(f"{target}: more than {_MAX_FILES} event files; point at one run's directory")
    return found


def detect(target: str) -> bool:
    """A directory holding event files (not a run directory), or an event file."""
    if os.path.isdir(target):
        return not os.path.isfile(os.path.join(target, rundir.HISTORY)) and bool(event_files(target))
    return is_event_file(target)


def read(target: str, columns: dict | None = None) -> Run:
    """Reads the TensorBoard run at ``target`` (see the module docstring).

    Raises:
        InputError: No event file, no scalar, a truncated file with nothing complete,
            several unrelated runs.
    """
    check_path(target)
    context = None
    if os.path.isdir(target) and os.path.isfile(os.path.join(target, rundir.HISTORY)):
        from kadvisor.advisor.readers.rundir import read_context

        context, target = target, os.path.join(target, TENSORBOARD_DIR)
        if not os.path.isdir(target):
            raise InputError(f"{context}: no {TENSORBOARD_DIR}/ directory (the run was trained with train.tensorboard = false)")
    files = event_files(target)
    if not files:
        raise InputError(f"{target}: no TensorBoard event files (events.out.tfevents.*) found")
    notes: list[str] = []
    groups: dict[str, dict[str, list]] = {}
    unreadable = []
    for path in files:
        points, problem = scalars(read_bytes(path, _MAX_EVENT_BYTES))
        if problem and not points:
            unreadable.append(path)
        if problem:
            notes.append(f"{os.path.relpath(path, target) if os.path.isdir(target) else path}: {problem}; "
                         f"the complete records were read")
        folder = os.path.dirname(path)
        prefix = ""
        if os.path.basename(folder).lower() in _SPLIT_DIRS and os.path.isdir(target):
            prefix, folder = os.path.basename(folder).lower() + "/", os.path.dirname(folder)
        group = groups.setdefault(folder, {})
        for tag, step, value, wall in sorted(points, key=lambda p: p[3]):  # written order
            group.setdefault(prefix + tag, []).append((step, value))
    groups = {k: _without_keras_duplicates(v) for k, v in groups.items() if v}
    if not groups and len(unreadable) == len(files):
        raise InputError(f"{target}: no readable TensorBoard record in {len(files)} event file(s) (corrupt, "
                         f"or not event files despite the name); expected files written by a TensorBoard writer")
    if not groups:
        raise InputError(f"{target}: event files hold no scalars (only images, histograms or text?); "
                         f"expected loss/metric scalars")
    parts = [_read_group(series, columns, target) for series in groups.values()]
    names = [os.path.relpath(g, target) if os.path.isdir(target) else os.path.basename(g) for g in groups]
    order = sorted(range(len(parts)), key=lambda i: parts[i][0][0] if len(parts[i][0]) else 0)
    spans = [(parts[i][0][0], parts[i][0][-1]) for i in order if len(parts[i][0])]
    if len(parts) > 1 and any(b[0] <= a[1] for a, b in zip(spans, spans[1:])):
        listed = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
        example = _run_directory_above(os.path.join(target, names[order[-1]]), target)
        raise InputError(f"{target}: {len(parts)} TensorBoard runs whose steps overlap ({listed}); "
                         f"diagnose one of them, e.g. kadvisor diagnose {example}")
    raw: dict[str, list] = {}
    stage: list[str] = []
    steps: list[float] = []
    for i in order:
        group_steps, group_columns, group_notes = parts[i]
        n = len(group_steps)
        for name in set(raw) | set(group_columns):
            raw.setdefault(name, [float("nan")] * len(steps))
            raw[name] += group_columns.get(name, [float("nan")] * n)
        steps += list(group_steps)
        stage += [names[i]] * n
        notes += group_notes
    unit = "epoch" if any(t.split("/")[-1].startswith("epoch_") for g in groups.values() for t in g) else "step"
    labels, label_notes = epoch_labels(np.asarray(steps, dtype=float), unit)
    if len(parts) > 1:
        raw["stage"] = stage
        notes.append(f"{len(parts)} runs read as consecutive stages: {', '.join(names[i] for i in order)}")
    run = build(raw, target, notes + label_notes, epochs=labels)
    run.format = "tensorboard"
    if context is not None:
        read_context(run, context)
    return run


def _run_directory_above(path: str, target: str) -> str:
    """The kadvisor run directory holding ``path`` (below ``target``), else ``path``:
    for a folder of runs, the run directory is what to diagnose (it knows the recipe)."""
    top = Path(target).resolve()
    for folder in Path(path).parents:
        if folder.resolve() == top:
            break
        if (folder / rundir.HISTORY).is_file() and (folder / rundir.RECIPE).is_file():
            return str(folder)
    return path


def _without_keras_duplicates(series: dict[str, list]) -> dict[str, list]:
    """Drops Keras's ``evaluation_<metric>_vs_iterations`` tags when ``epoch_`` tags exist.

    Keras's `TensorBoard` callback writes each validation result twice: as
    ``validation/epoch_<metric>`` at the epoch, and again at the end of every
    evaluation as ``validation/evaluation_<metric>_vs_iterations`` at the optimizer's
    step count. Read together, the second set would look like extra epochs.
    """
    if not any(t.split("/")[-1].startswith("epoch_") for t in series):
        return series
    return {t: v for t, v in series.items()
            if not (t.split("/")[-1].startswith("evaluation_") and t.endswith("_vs_iterations"))}


def _read_group(series: dict[str, list], columns: dict | None, source: str):
    notes: list[str] = []
    mapped = canonical_columns(series, notes, columns)
    mapped.pop("epoch", None)
    steps, values, align_notes = align(mapped, "step")
    return steps, values, notes + align_notes
