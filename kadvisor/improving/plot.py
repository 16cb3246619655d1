"""``improve.png``: the validation objective by round, each point labelled with its change.

Kept rounds are green (labelled with their change), reverted ones grey, failed ones red crosses; the line is the
incumbent (the best kept so far), and the test metric is drawn faintly for reference
only. matplotlib with the Agg backend, written atomically (`kadvisor.plotting.save_figure`).
"""

from __future__ import annotations

import math
from pathlib import Path

from kadvisor.improving.rounds import BASELINE, FAILED, KEPT, RoundRow
from kadvisor.plotting import save_figure

_STYLE = {BASELINE: ("tab:blue", "o"), KEPT: ("tab:green", "o"), FAILED: ("tab:red", "x")}
_LABEL_CHARS = 38


def plot_rounds(path: Path, rows: list[RoundRow], objective: str) -> bool:
    """Writes the figure; returns False when no round has finished."""
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(rows) + 2), 4.2))
    xs = [r.round for r in rows]
    incumbent, best = [], math.nan
    for r in rows:
        if r.decision in (BASELINE, KEPT):
            best = r.value
        incumbent.append(best)
    ax.step(xs, incumbent, where="post", color="tab:green", alpha=0.5, label="incumbent")
    tests = [(r.round, r.test) for r in rows if math.isfinite(r.test)]
    if tests:
        ax.plot(*zip(*tests), ":", color="0.6", label="test (reported only)")
    for r in rows:
        colour, marker = _STYLE.get(r.decision, ("0.5", "o"))
        y = r.value if math.isfinite(r.value) else (min((v for v in incumbent if math.isfinite(v)), default=0))
        ax.scatter([r.round], [y], c=colour, marker=marker, s=40, zorder=3)
        label = "recipe as given" if r.round == 0 else r.change + ("" if r.decision == KEPT else f" ({r.decision})")
        if len(label) > _LABEL_CHARS:
            label = label[: _LABEL_CHARS - 1] + "…"
        ax.annotate(label, (r.round, y), textcoords="offset points", xytext=(4, 6), rotation=20,
                    fontsize=7, color=colour)
    ax.margins(x=0.15, y=0.2)  # room for the labels of the last and the highest points
    ax.set_xticks(xs)
    ax.set_xlabel("round")
    ax.set_ylabel(objective)
    ax.set_title(f"kadvisor improve: {objective} by round", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    return True
