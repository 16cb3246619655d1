"""PyTorch Lightning ``CSVLogger``: ``metrics.csv`` (in ``lightning_logs/version_N/``).

Lightning writes one row per logging call: training rows every few steps
(``train_loss`` or ``train_loss_step``), validation rows of their own at each epoch end
(``val_loss``), and ``*_epoch`` aggregates; every row has ``epoch`` and ``step``. The
reader reduces them to one point per epoch: an ``_epoch`` aggregate when there is one,
else the mean of that epoch's per-step values.
"""

from __future__ import annotations

import csv
import io
import os

from kadvisor.advisor.readers.align import align
from kadvisor.advisor.readers.roles import canonical_columns
from kadvisor.advisor.readers.run import Run, build, to_float
from kadvisor.advisor.readers.safeio import read_text
from kadvisor.errors import InputError

METRICS_FILE = "metrics.csv"


def _file(path: str) -> str:
    return os.path.join(path, METRICS_FILE) if os.path.isdir(path) else path


def detect(path: str, head: str) -> bool:
    """A ``metrics.csv`` (or a directory holding one) whose header has ``epoch`` and ``step``."""
    if os.path.isdir(path):
        if not os.path.isfile(_file(path)):
            return False
        head = read_text(_file(path))[:4096]
    header = head.lstrip("\ufeff").splitlines()[0].lower().split(",") if head.strip() else []
    return "epoch" in header and "step" in header


def read(path: str, columns: dict | None = None) -> Run:
    """Reads a Lightning ``metrics.csv``: one point per epoch (see the module docstring).

    Raises:
        InputError: No ``epoch`` column, no rows, no loss/metric column.
    """
    source = _file(path)
    rows = list(csv.DictReader(io.StringIO(read_text(source).lstrip("\ufeff"))))
    if not rows or "epoch" not in rows[0]:
        raise InputError(f"{source}: expected Lightning's metrics.csv with an 'epoch' column and one row per logging call")
    notes: list[str] = []
    series: dict[str, list] = {}
    for row in rows:
        epoch = to_float(row.get("epoch"))
        if epoch is None:
            continue
        for name, cell in row.items():
            value = to_float(cell)
            if name not in ("epoch", None) and value is not None:
                series.setdefault(name, []).append((epoch, value))
    mapped = canonical_columns(series, notes, columns)
    mapped.pop("epoch", None)
    # Several values of one epoch (per-step logging) are averaged; one value is kept.
    grouped = {n: _per_epoch(points) for n, points in mapped.items()}
    reduced = [n for n, points in mapped.items() if len(points) > len(grouped[n])]
    steps, values, align_notes = align(grouped, "epoch")
    if reduced:
        notes.append(f"per-step values averaged per epoch: {', '.join(reduced)}")
    run = build(values, source, notes + align_notes, epochs=steps)
    run.format = "lightning"
    return run


def _per_epoch(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    sums: dict[float, list[float]] = {}
    for epoch, value in points:
        sums.setdefault(epoch, []).append(value)
    return [(e, sum(v) / len(v)) for e, v in sums.items()]
