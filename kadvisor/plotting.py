"""curves.png: loss and the main metric, training and validation, on one figure.

Practitioners read train and validation curves side by side; stage boundaries and
learning-rate changes are marked because they explain kinks in the curves. Uses
matplotlib's Agg backend (no display needed); imported lazily by its callers.
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Iterable

from kadvisor.errors import InputError
from kadvisor.rundir import write_bytes_atomic

_NOT_METRICS = {"epoch", "lr", "learning_rate", "stage", "seconds"}


def read_history_columns(path: str | os.PathLike) -> dict[str, list]:
    """Reads a kadvisor/CSVLogger history into columns (floats where they parse)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r and any(v for v in r.values())]
    columns: dict[str, list] = {}
    for row in rows:
        for key, value in row.items():
            if key is None:
                continue
            try:
                parsed = float(value)
            except (TypeError, ValueError):
                parsed = value
            columns.setdefault(key, []).append(parsed)
    return columns


def main_metric(columns: Iterable[str]) -> str | None:
    """The metric to plot beside the loss: accuracy if logged, else the first other one."""
    names = [c for c in columns if c not in _NOT_METRICS and not c.startswith("val_") and c != "loss"]
    for preferred in ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy"):
        if preferred in names:
            return preferred
    return names[0] if names else None


def stage_boundaries(columns: dict[str, list]) -> list[tuple[float, str]]:
    """(x position, stage name) where the ``stage`` column changes."""
    stages = columns.get("stage") or []
    epochs = _epochs(columns)
    return [(epochs[i] - 0.5, str(stages[i])) for i in range(1, len(stages)) if stages[i] != stages[i - 1]]


def _epochs(columns: dict[str, list]) -> list[float]:
    n = max((len(v) for v in columns.values()), default=0)
    # CSVLogger counts epochs from 0; people count from 1.
    return [float(e) + 1 for e in columns.get("epoch", range(n))]


def plot_history(columns: dict[str, list], out_path: str | os.PathLike, title: str = "",
                 marks: Iterable[tuple[float, str, str]] = ()) -> None:
    """Draws loss and metric (train and validation) on one figure and saves it atomically.

    Args:
        columns: History columns (see `read_history_columns`).
        out_path: PNG file to write.
        title: Figure title.
        marks: Extra vertical markers (epoch counted from 1, label, colour), e.g. the
            advisor's best epoch or divergence point.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = _epochs(columns)
    metric = main_metric(columns)
    panels = [("loss", "loss")] + ([(metric, metric)] if metric else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            values = [v if isinstance(v, float) and math.isfinite(v) else float("nan") for v in columns.get(name, [])]
            if values:
                ax.plot(epochs[: len(values)], values, style, label="validation" if name.startswith("val_") else "training")
        for x, stage in stage_boundaries(columns):
            ax.axvline(x, color="grey", linestyle=":", linewidth=1)
            ax.text(x, 1.0, f" {stage}", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="grey")
        for x, text, colour in marks:
            ax.axvline(x, color=colour, linewidth=1)
            ax.text(x, 0.02, f" {text}", transform=ax.get_xaxis_transform(), fontsize=8, color=colour, rotation=90)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_path)


def image_format(path: str | os.PathLike) -> str:
    """The image format a file name asks for (``png`` without a suffix).

    Checked before a command does any work, so a bad ``--plot`` name fails first.

    Raises:
        InputError: for a suffix that is not an image format matplotlib writes.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        raise InputError(f"{os.fspath(path)}: cannot draw a '.{suffix}' file; expected a name ending in "
                         f"{', '.join('.' + f for f in sorted(formats) if f != 'pgf')}")
    return suffix


def save_figure(fig, path: str | os.PathLike) -> None:
    """Saves a matplotlib figure in the format its file name ends with (PNG without a
    suffix), replaced atomically, and closes it.

    Raises:
        InputError: for a suffix that is not an image format matplotlib writes.
    """
    import matplotlib.pyplot as plt

    try:
        suffix = image_format(path)
    except InputError:
        plt.close(fig)
        raise
    buffer = io.BytesIO()
    fig.savefig(buffer, format=suffix, dpi=100)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
