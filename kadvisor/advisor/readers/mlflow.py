"""MLflow's local file store: ``mlruns/<experiment>/<run>/metrics/<name>``.

Each metric file holds one ``timestamp value step`` line per logged point (``step``
is the epoch for Keras autologging). The target may be the run directory, its
experiment, or ``mlruns`` itself; with several runs the reader lists them and asks
which to diagnose.
"""

from __future__ import annotations

import os

from kadvisor.advisor.readers.align import align, epoch_labels
from kadvisor.advisor.readers.roles import canonical_columns
from kadvisor.advisor.readers.run import Run, build, to_float
from kadvisor.advisor.readers.safeio import read_text
from kadvisor.errors import InputError

_MAX_RUNS_SEARCHED = 10000


def _is_run(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "metrics")) and os.path.isfile(os.path.join(path, "meta.yaml"))


def runs_under(path: str) -> list[str]:
    """Run directories at ``path``: itself, its children (an experiment) or grandchildren (mlruns)."""
    if _is_run(path):
        return [path]
    found = []
    for depth in (1, 2):
        level = [path]
        for _ in range(depth):
            level = [os.path.join(p, c) for p in level if os.path.isdir(p) and not os.path.islink(p)
                     for c in sorted(os.listdir(p))][:_MAX_RUNS_SEARCHED]
        found = [p for p in level if _is_run(p)]
        if found:
            break
    return found


def detect(path: str, head: str) -> bool:
    return os.path.isdir(path) and bool(runs_under(path))


def _run_name(run: str) -> str:
    tag = os.path.join(run, "tags", "mlflow.runName")
    name = read_text(tag).strip() if os.path.isfile(tag) else ""
    return f"{os.path.basename(run)} ({name})" if name else os.path.basename(run)


def read(path: str, columns: dict | None = None) -> Run:
    """Reads one MLflow run's metric histories, aligned by step.

    Raises:
        InputError: No run, several runs (listed), unreadable metric lines, no
            loss/metric.
    """
    runs = runs_under(path)
    if not runs:
        raise InputError(f"{path}: no MLflow run (a directory with metrics/ and meta.yaml) found")
    if len(runs) > 1:
        listed = ", ".join(_run_name(r) for r in runs[:5]) + (", …" if len(runs) > 5 else "")
        raise InputError(f"{path}: {len(runs)} MLflow runs ({listed}); diagnose one of them, "
                         f"e.g. kadvisor diagnose {runs[-1]}")
    run_dir = runs[0]
    metrics_dir = os.path.join(run_dir, "metrics")
    series: dict[str, list] = {}
    for root, _, files in os.walk(metrics_dir):
        for name in sorted(files):
            file = os.path.join(root, name)
            metric = os.path.relpath(file, metrics_dir).replace(os.sep, "/")
            for n, line in enumerate(read_text(file).splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                value = to_float(parts[1]) if len(parts) >= 2 else None
                step = to_float(parts[2]) if len(parts) >= 3 else float(n - 1)
                if value is None or step is None:
                    raise InputError(f"{file}:{n}: expected 'timestamp value step', got '{line[:60]}'")
                series.setdefault(metric, []).append((step, value))
    notes: list[str] = []
    mapped = canonical_columns(series, notes, columns)
    mapped.pop("epoch", None)
    steps, values, align_notes = align(mapped, "step")
    labels, label_notes = epoch_labels(steps, "step")
    run = build(values, run_dir, notes + align_notes + label_notes, epochs=labels)
    run.format = "mlflow"
    return run
