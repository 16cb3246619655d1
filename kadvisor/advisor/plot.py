"""The learning curves with the findings marked (``diagnose --plot FILE.png``).

Loss on the left, the main metric on the right, training and validation on the same
axes; vertical lines mark the best validation-loss epoch (green, dotted), the epochs
findings point at (divergence point, overfitting onset, plateau start) and stage
boundaries. matplotlib (Agg) is imported
only here, only when a plot is asked for.
"""

from __future__ import annotations

import numpy as np

from kadvisor.advisor.curves import change_points
from kadvisor.advisor.engine import Diagnosis
from kadvisor.advisor.features import RunFeatures
from kadvisor.plotting import save_figure

_MARK_COLOURS = {"error": "tab:red", "warning": "tab:orange", "info": "tab:gray"}


def plot_diagnosis(d: Diagnosis, path: str) -> None:
    """Writes the annotated curves of ``d`` to ``path`` (PNG, or any matplotlib format)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = RunFeatures.from_run(d.run)
    epochs = np.asarray(d.run.epochs, dtype=float)
    panels = [("loss", f.run.columns.get("loss"), f.run.columns.get("val_loss"))]
    if f.metric:
        panels.append((f.metric, f.run.columns.get(f.metric), f.run.columns.get("val_" + f.metric)))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (name, train, val) in zip(axes[0], panels):
        if train is not None:
            ax.plot(epochs[: len(train)], train, label=name)
        if val is not None:
            ax.plot(epochs[: len(val)], val, label="val_" + name)
        best = d.features.get("val_loss_best_epoch")
        if best is not None:
            ax.axvline(best, color="tab:green", ls=":", lw=1)
            ax.annotate("best val_loss", (best, 0), xycoords=("data", "axes fraction"),
                        rotation=90, va="bottom", ha="right", fontsize=8, color="tab:green")
        for finding in d.findings:
            if finding.epoch is not None:
                ax.axvline(finding.epoch, color=_MARK_COLOURS.get(finding.severity, "k"), ls="--", lw=1)
                ax.annotate(finding.rule, (finding.epoch, 1), xycoords=("data", "axes fraction"),
                            rotation=90, va="top", ha="right", fontsize=8)
        if f.stage:
            for i in change_points(f.stage):
                ax.axvline(epochs[i], color="k", lw=0.8, alpha=0.5)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend(fontsize=8)
    title = ", ".join(x.rule for x in d.findings) or d.verdict
    fig.suptitle(f"{d.source}: {title}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_kfold(d, path: str) -> None:
    """Writes every fold's loss and validation loss on one figure (``d`` is a
    `kadvisor.advisor.kfold.KFoldDiagnosis`), titled with the consensus findings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, fold) in enumerate(d.folds.items()):
        colour = f"C{i % 10}"
        cols, epochs = fold.run.columns, np.asarray(fold.run.epochs, dtype=float)
        if "loss" in cols:
            ax.plot(epochs, cols["loss"], color=colour, lw=1, alpha=0.6)
        if "val_loss" in cols:
            ax.plot(epochs, cols["val_loss"], color=colour, lw=1.5, ls="--", label=f"{name} (val dashed)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    title = ", ".join(f"{c.finding.rule} {len(c.folds)}/{len(d.folds)}" for c in d.consensus) or "healthy"
    fig.suptitle(f"{d.source}: {title}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
