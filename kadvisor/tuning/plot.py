"""``search.png``: the objective against each searched value, one panel per path.

Points are the completed trials, shaded by the epochs each model had trained
(Hyperband compares short and long budgets); the best trial is a star. A
log-uniform path gets a log axis, a choice or a bool one tick per value.
"""

from __future__ import annotations

import math
from pathlib import Path

from kadvisor.plotting import save_figure
from kadvisor.tuning.results import TrialRow, format_value


def plot_search(path: Path, space, rows: list[TrialRow], best: TrialRow | None, objective: str) -> bool:
    """Writes the figure atomically; returns False when no trial has completed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.completed]
    if not done or not space:
        return False
    columns = min(3, len(space))
    lines = math.ceil(len(space) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.4 * lines), squeeze=False)
    epochs = [r.epochs or 0 for r in done]
    for ax, dist in zip(axes.flat, space):
        _panel(ax, dist, done, best, epochs)
        ax.set_ylabel(objective)
    for ax in list(axes.flat)[len(space):]:
        ax.set_visible(False)
    low, high = min(epochs), max(epochs)
    shade = f"colour = epochs trained (dark {low} → light {high})" if low != high else f"{low} epochs each"
    fig.suptitle(f"{len(done)} completed trials; {shade}; star = best", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def _panel(ax, dist, done, best, epochs) -> None:
    categorical = dist.kind in ("choice", "bool")
    labels = [format_value(c) for c in dist.choices] if categorical else []

    def x_of(row):
        value = row.values.get(dist.path)
        return labels.index(format_value(value)) if categorical else value

    shown = [(x_of(r), r.score, e) for r, e in zip(done, epochs) if dist.path in r.values]
    if shown:
        xs, ys, cs = zip(*shown)
        ax.scatter(xs, ys, c=cs, cmap="viridis", s=22, alpha=0.8)
    if best is not None and dist.path in best.values:
        ax.scatter([x_of(best)], [best.score], marker="*", s=180, c="crimson", zorder=3)
    if categorical:
        ax.set_xticks(range(len(labels)), labels)
    elif dist.kind == "log_uniform":
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap within a decade
    ax.set_title(dist.path, fontsize=9)
    ax.grid(alpha=0.3)
