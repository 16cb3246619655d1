"""Scores the advisor against the labelled real curves (per-label P/R/F1, macro-F1).

    python benchmarks/advisor_agreement.py [CURVES_DIR] [-v] [--holdout]

CURVES_DIR defaults to ../shared/curves relative to the repository root and must hold
``dev/*.csv`` and ``dev-labels.json``. A curve with no problem findings is predicted
``healthy``; only found errors/warnings of curve rules count (recipe/data rules and
undecided findings do not).

``-v`` lists every curve whose prediction differs from its labels. ``--holdout`` is a
sanity check against fitting the thresholds to these files: the curves are split in
two halves (alternate files); on each half the ``[advisor]`` thresholds in `GRID` are
re-tuned one at a time, and the tuned values and the defaults are both scored on the
*other* half. If the defaults do about as well there as values tuned on the other half,
the defaults are not fitted to one half's quirks.
"""

from __future__ import annotations

import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kadvisor.advisor import RULES, diagnose  # noqa: E402
from kadvisor.advisor.inputs import read_log  # noqa: E402
from kadvisor.recipe.advisor_section import advisor_defaults  # noqa: E402

# Thresholds re-tuned by --holdout, with the values tried.
GRID = {
    "noise_level": [0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12],
    "overfit_rise": [0.05, 0.1, 0.15, 0.2],
    "overfit_loss_gap": [0.3, 0.4, 0.5, 0.6, 0.7],
    "overfit_gap_growth": [0.05, 0.1, 0.15, 0.2, 0.3],
    "improve_min": [0.01, 0.02, 0.03, 0.05, 0.08],
    "plateau_at": [0.5, 0.6, 0.7],
    "slow_rate": [0.02, 0.03, 0.05],
    "val_better_fraction": [0.6, 0.7, 0.75, 0.8, 0.9],
}


def predict(run, thresholds: dict | None = None) -> set[str]:
    """Curve-rule problem labels predicted for one log (a path or a read `Run`)."""
    curve_rules = [n for n, r in RULES.items() if r.curve]
    found = {f.rule for f in diagnose(run, rules=curve_rules, thresholds=thresholds).findings}
    return found or {"healthy"}


def score(truth: dict[str, set[str]], pred: dict[str, set[str]]) -> tuple[list, float]:
    """Per-label (label, support, precision, recall, f1) rows and the macro-F1."""
    labels = sorted({l for v in truth.values() for l in v})
    rows = []
    for label in labels:
        tp = sum(label in truth[k] and label in pred[k] for k in truth)
        fp = sum(label not in truth[k] and label in pred[k] for k in truth)
        fn = sum(label in truth[k] and label not in pred[k] for k in truth)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rows.append((label, tp + fn, p, r, f1))
    return rows, sum(r[4] for r in rows) / len(rows)


def macro_f1(runs: dict, truth: dict, thresholds: dict) -> float:
    """Macro-F1 of ``thresholds`` on the given runs."""
    pred = {name: predict(runs[name], thresholds) for name in truth}
    return score(truth, pred)[1]


def tune(runs: dict, truth: dict) -> dict:
    """Coordinate-wise search over `GRID`, starting from the defaults (two sweeps)."""
    th = advisor_defaults()
    for _ in range(2):
        for name, values in GRID.items():
            best = max(values, key=lambda v: (macro_f1(runs, truth, {**th, name: v}), v == th[name]))
            th[name] = best
    return th


def holdout(base: str, truth: dict[str, set[str]]) -> None:
    """Prints the two-fold held-out check described in the module docstring."""
    names = sorted(truth)
    runs = {n: read_log(os.path.join(base, "dev", n)) for n in names}
    halves = [names[0::2], names[1::2]]
    defaults = advisor_defaults()
    for i, (fit_on, test_on) in enumerate([(halves[0], halves[1]), (halves[1], halves[0])]):
        fit_truth = {n: truth[n] for n in fit_on}
        test_truth = {n: truth[n] for n in test_on}
        tuned = tune(runs, fit_truth)
        changed = {k: v for k, v in tuned.items() if k in GRID and v != defaults[k]}
        print(f"fold {i + 1}: tuned on {len(fit_on)} curves "
              f"(macro-F1 there {macro_f1(runs, fit_truth, tuned):.3f}), changed {changed or 'nothing'}")
        print(f"  held-out {len(test_on)} curves: defaults {macro_f1(runs, test_truth, defaults):.3f}, "
              f"tuned {macro_f1(runs, test_truth, tuned):.3f}")


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    args = [a for a in argv[1:] if not a.startswith("-")]
    base = args[0] if args else os.path.join(ROOT, "..", "shared", "curves")
    with open(os.path.join(base, "dev-labels.json"), encoding="utf-8") as fh:
        truth = {k: set(v) for k, v in json.load(fh).items()}
    start = time.perf_counter()
    pred = {name: predict(os.path.join(base, "dev", name)) for name in truth}
    elapsed = time.perf_counter() - start
    rows, macro = score(truth, pred)
    print(f"{'label':24s} {'n':>3s} {'prec':>6s} {'recall':>6s} {'f1':>6s}")
    for label, n, p, r, f1 in rows:
        print(f"{label:24s} {n:3d} {p:6.2f} {r:6.2f} {f1:6.2f}")
    print(f"macro-F1 {macro:.3f} over {len(truth)} curves ({elapsed:.2f} s)")
    if verbose:
        for name in sorted(truth):
            if truth[name] != pred[name]:
                print(f"  {name}: truth {sorted(truth[name])} predicted {sorted(pred[name])}")
    if "--holdout" in argv:
        holdout(base, truth)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
