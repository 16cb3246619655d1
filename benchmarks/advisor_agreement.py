"""Scores the advisor against the labelled real curves (per-label P/R/F1, macro-F1).

    python benchmarks/advisor_agreement.py [CURVES_DIR] [-v]

CURVES_DIR defaults to ../shared/curves relative to the repository root and must hold
``dev/*.csv`` and ``dev-labels.json``. A curve with no problem findings is predicted
``healthy``; only found errors/warnings of curve rules count (recipe/data rules and
undecided findings do not).
"""

from __future__ import annotations

import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kadvisor.advisor import RULES, diagnose  # noqa: E402


def predict(path: str) -> set[str]:
    """Curve-rule problem labels predicted for one log file."""
    curve_rules = [n for n, r in RULES.items() if r.curve]
    found = {f.rule for f in diagnose(path, rules=curve_rules).findings}
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


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    args = [a for a in argv[1:] if a != "-v"]
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
