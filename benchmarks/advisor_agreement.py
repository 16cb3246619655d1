"""Scores the advisor against the labelled real curves, honestly: grouped cross-validation.

    python benchmarks/advisor_agreement.py [CURVES_DIR] [--cv] [--fit] [-v] [--folds 5]

CURVES_DIR defaults to ../shared/curves beside the repository (the project's shared labelled
set), else the copy in tests/data/labelled_curves, and must hold ``dev/*.csv``,
``dev-labels.json`` and ``manifest.csv`` (its ``group`` column is the unit of
cross-validation). A curve with no problem finding is predicted ``healthy``; only found
errors/warnings of curve rules count (recipe/data rules and undecided findings do not);
an unreadable file is predicted nothing, so it counts as a miss.

Without options: the shipped thresholds scored on every labelled curve. The thresholds
were *fitted* to these curves (``--fit``), so this figure is optimistic; report ``--cv``.

``--fit``: the threshold-fitting procedure on all labelled curves, printing the values to
ship as the ``[advisor]`` defaults (`kadvisor.recipe.advisor_section`; a test checks that
they agree). For each label in `FITTED`, one threshold of that label's rule is chosen from
its candidate grid to maximise the F1 of that label alone (ties go to the rubric's value,
the first candidate) — one number per label, so the rules keep reading curves the way the
rubric describes and cannot memorise files.

``--cv``: scikit-learn ``GroupKFold`` over the manifest's ``group``; on each training
split the thresholds are fitted as above, and the held-out groups are predicted with them.
Prints per-label precision/recall/F1 and macro-F1 of the pooled held-out predictions and
the macro-F1 of each fold (its spread). This is the figure the README and docs report.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from typing import Iterable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kadvisor.advisor import RULES, diagnose  # noqa: E402
from kadvisor.advisor.engine import evaluate  # noqa: E402
from kadvisor.advisor.features import RunFeatures  # noqa: E402
from kadvisor.advisor.inputs import read_log  # noqa: E402
from kadvisor.errors import InputError  # noqa: E402
from kadvisor.recipe.advisor_section import advisor_defaults  # noqa: E402

# label -> (the threshold of its rule that is fitted, candidates; the first is the rubric's).
FITTED: dict[str, tuple[str, list[float]]] = {
    "noisy_validation": ("noise_level", [0.05, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.06, 0.08, 0.1]),
    "overfitting": ("overfit_rise", [0.1, 0.03, 0.05, 0.15, 0.2, 0.3, 0.4]),
    "still_improving": ("improve_min", [0.03, 0.01, 0.02, 0.04, 0.05, 0.07, 0.1]),
    "plateau": ("plateau_at", [0.6, 0.3, 0.4, 0.5, 0.7, 0.8]),
    "underfitting": ("underfit_drop", [0.25, 0.15, 0.2, 0.3, 0.4, 0.5]),
    "unstable": ("unstable_noise", [0.1, 0.05, 0.07, 0.15, 0.2, 0.3]),
    "val_better_than_train": ("val_better_fraction", [0.75, 0.6, 0.65, 0.7, 0.8, 0.85, 0.9]),
    "slow_convergence": ("slow_rate", [0.03, 0.01, 0.02, 0.05, 0.08]),
}
CURVE_RULES = [n for n, r in RULES.items() if r.curve]


def rubric_base() -> dict:
    """Where fitting starts: the shipped thresholds, with every fitted one at its rubric
    value (the first candidate), so that what is fitted never depends on what was
    shipped before."""
    th = advisor_defaults()
    th.update({param: candidates[0] for param, candidates in FITTED.values()})
    return th


def load(base: str) -> tuple[dict[str, set[str]], dict[str, str], dict]:
    """(labels, group of each file, read runs — None where unreadable)."""
    with open(os.path.join(base, "dev-labels.json"), encoding="utf-8") as fh:
        truth = {k: set(v) for k, v in json.load(fh).items()}
    with open(os.path.join(base, "manifest.csv"), encoding="utf-8", newline="") as fh:
        groups = {row["file"]: row["group"] for row in csv.DictReader(fh)}
    runs = {}
    for name in truth:
        try:
            runs[name] = read_log(os.path.join(base, "dev", name))
        except InputError:
            runs[name] = None
    return truth, {n: groups.get(n, n) for n in truth}, runs


def predict(run, thresholds: dict | None = None) -> set[str]:
    """Curve-rule problem labels predicted for one log (a path or a read `Run`)."""
    if run is None:
        return set()
    found = set()
    for f in diagnose(run, rules=CURVE_RULES, thresholds=thresholds).findings:
        # A symptom folded into its cause ("this also explains: …") was still seen.
        found |= {f.rule, *f.evidence.get("explains", [])}
    return found or {"healthy"}


def score(truth: dict[str, set[str]], pred: dict[str, set[str]]) -> tuple[list, float]:
    """Per-label (label, support, precision, recall, f1) rows and the macro-F1."""
    labels = sorted({l for v in truth.values() for l in v})
    rows = [(label, *_prf(label, truth, pred, truth)) for label in labels]
    return rows, sum(r[4] for r in rows) / len(rows)


def _prf(label: str, truth: dict, pred: dict, names: Iterable[str]) -> tuple[int, float, float, float]:
    tp = sum(label in truth[k] and label in pred[k] for k in names)
    fp = sum(label not in truth[k] and label in pred[k] for k in names)
    fn = sum(label in truth[k] and label not in pred[k] for k in names)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return tp + fn, p, r, (2 * p * r / (p + r) if p + r else 0.0)


class Firing:
    """Caches whether a label's rule fires on each curve for each candidate threshold
    (the other thresholds at ``base``).

    Firing does not depend on the fold, only the choice of candidate does, so the
    expensive part runs once for all folds.
    """

    def __init__(self, runs: dict, base: dict):
        self.features = {n: RunFeatures.from_run(r) for n, r in runs.items() if r is not None}
        self.base = base
        self._cache: dict[tuple, dict[str, bool]] = {}

    def fires(self, label: str, value: float) -> dict[str, bool]:
        """Curve name → whether ``label`` fires with its fitted threshold at ``value``."""
        return self.fires_with(label, ((FITTED[label][0], value),))

    def fires_with(self, label: str, overrides: tuple[tuple[str, float], ...]) -> dict[str, bool]:
        """Curve name → whether ``label`` fires with these (threshold, value) pairs."""
        key = (label, overrides)
        if key not in self._cache:
            th = {**self.base, **dict(overrides)}
            self._cache[key] = {name: bool(evaluate(f, th, [label], f.last_stage())[0])
                                for name, f in self.features.items()}
        return self._cache[key]


def fit(firing: Firing, truth: dict[str, set[str]], names: list[str]) -> dict:
    """Thresholds fitted on ``names`` (see the module docstring)."""
    th = dict(firing.base)
    for label, (param, candidates) in FITTED.items():
        def f1(value: float) -> float:
            fires = firing.fires(label, value)
            pred = {n: {label} if fires.get(n) else set() for n in names}
            return _prf(label, truth, pred, names)[3]
        th[param] = max(candidates, key=lambda v: (round(f1(v), 6), v == candidates[0]))
    return th


def grouped_folds(truth: dict, groups: dict, folds: int):
    """(training names, held-out names) of each scikit-learn ``GroupKFold`` split of
    the labelled curves by their manifest ``group``."""
    from sklearn.model_selection import GroupKFold

    names = sorted(truth)
    for train, test in GroupKFold(n_splits=folds).split(names, groups=[groups[n] for n in names]):
        yield [names[j] for j in train], [names[j] for j in test]


def cross_validate(truth, groups, runs, folds: int, firing: Firing | None = None) -> tuple[list, float, list, list]:
    """The grouped cross-validated agreement (see the module docstring).

    Returns:
        (per-label rows and macro-F1 of the pooled held-out predictions, the macro-F1
        of each fold, the thresholds chosen in each fold).
    """
    firing = firing or Firing(runs, rubric_base())
    held_out: dict[str, set[str]] = {}
    per_fold, chosen = [], []
    for fit_on, test_on in grouped_folds(truth, groups, folds):
        th = fit(firing, truth, fit_on)
        chosen.append({p: th[p] for p, _ in FITTED.values()})
        pred = {n: predict(runs[n], th) for n in test_on}
        held_out.update(pred)
        per_fold.append(score({n: truth[n] for n in test_on}, pred)[1])
    rows, macro = score(truth, held_out)
    return rows, macro, per_fold, chosen


def print_cross_validation(truth, groups, runs, folds: int) -> None:
    """Prints `cross_validate`'s figures."""
    rows, macro, per_fold, chosen = cross_validate(truth, groups, runs, folds)
    _print_rows(rows)
    print(f"grouped {folds}-fold CV macro-F1 {macro:.3f} (pooled held-out predictions, {len(truth)} curves, "
          f"{len(set(groups.values()))} groups); per fold {', '.join(f'{m:.3f}' for m in per_fold)} "
          f"(mean {np.mean(per_fold):.3f} ± {np.std(per_fold):.3f})")
    for p, _ in FITTED.values():
        print(f"  {p}: chosen per fold {[c[p] for c in chosen]}")


def _print_rows(rows) -> None:
    print(f"{'label':24s} {'n':>3s} {'prec':>6s} {'recall':>6s} {'f1':>6s}")
    for label, n, p, r, f1 in rows:
        print(f"{label:24s} {n:3d} {p:6.2f} {r:6.2f} {f1:6.2f}")


def parse_args(argv: list[str]) -> tuple[str, int]:
    """(curves directory, folds) from ``[CURVES_DIR] [--folds N]``; the directory
    defaults to ../shared/curves, else the copy in tests/data/labelled_curves."""
    args = [a for a in argv[1:] if not a.startswith("-")]
    folds = int(argv[argv.index("--folds") + 1]) if "--folds" in argv else 5
    if "--folds" in argv:
        args = [a for a in args if a != str(folds)]
    shared = os.path.join(ROOT, "..", "shared", "curves")
    default = shared if os.path.isdir(shared) else os.path.join(ROOT, "tests", "data", "labelled_curves")
    return (args[0] if args else default), folds


def main(argv: list[str]) -> int:
    base, folds = parse_args(argv)
    truth, groups, runs = load(base)
    start = time.perf_counter()
    if "--fit" in argv:
        th = fit(Firing(runs, rubric_base()), truth, sorted(truth))
        print("fitted on all labelled curves:")
        for label, (param, _) in FITTED.items():
            print(f"  {param} = {th[param]}   ({label}; shipped {advisor_defaults()[param]})")
    if "--cv" in argv:
        print_cross_validation(truth, groups, runs, folds)
    if "--cv" not in argv and "--fit" not in argv:
        pred = {name: predict(runs[name]) for name in truth}
        rows, macro = score(truth, pred)
        _print_rows(rows)
        print(f"macro-F1 {macro:.3f} over {len(truth)} curves with the shipped thresholds "
              "(fitted to these curves: report --cv)")
        if "-v" in argv:
            for name in sorted(truth):
                if truth[name] != pred[name]:
                    print(f"  {name}: truth {sorted(truth[name])} predicted {sorted(pred[name])}")
    print(f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
