"""Would more fitting beat the hand-written rules?  Two alternatives under the same grouped CV.

    python benchmarks/advisor_alternatives.py [CURVES_DIR] [--folds 5]

Prints, beside the rules' own grouped-CV macro-F1 (`advisor_agreement.py --cv`, one
fitted threshold per label):

* **two thresholds per label**: for each label, the rule's fitted threshold and a second
  one of its thresholds (``SECOND``) are chosen together from their grid product on the
  training folds;
* **a learned model**: per label, a scikit-learn ``LogisticRegression`` (balanced class
  weights, standardised inputs) over every curve rule's confidence at the shipped
  thresholds plus 14 curve measurements the rules use (pace, R², loss drop, zig-zag,
  spikes, validation noise, end improvement and its signal-to-noise, settled and best
  epoch, rise after the minimum, final training error), trained on the training folds.

Both are fitted only on the training folds of scikit-learn ``GroupKFold`` over the
manifest's ``group``, exactly as ``--cv`` is (the learned model's rule confidences use the
shipped thresholds, fitted on all curves: a leak that can only flatter it). The point is the comparison: measured on
the 142 labelled curves, neither beats the rules, which is why the shipped advisor keeps
one threshold per label.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import advisor_agreement as A  # noqa: E402
from kadvisor.advisor import curves as C  # noqa: E402
from kadvisor.advisor.engine import evaluate  # noqa: E402
from kadvisor.advisor.rules.generalisation import rising_validation, validation_noise  # noqa: E402
from kadvisor.advisor.rules.training import _straight_and_slow, loss_spikes, training_zigzag  # noqa: E402

# label -> (a second threshold of its rule, candidates; the first is the shipped value).
SECOND: dict[str, tuple[str, list[float]]] = {
    "overfitting": ("overfit_gap_growth", [0.15, 0.05, 0.1, 0.2, 0.3]),
    "still_improving": ("improve_tail", [0.2, 0.1, 0.15, 0.25, 0.3]),
    "plateau": ("plateau_tolerance", [0.02, 0.01, 0.03, 0.05]),
    "underfitting": ("close_gap", [0.25, 0.1, 0.15, 0.35, 0.5]),
    "unstable": ("spike_rise", [0.5, 0.3, 0.4, 0.7, 1.0]),
    "slow_convergence": ("slow_pace", [0.6, 0.4, 0.5, 0.7]),
}


def two_thresholds(truth, groups, runs, folds: int) -> float:
    """Grouped-CV macro-F1 with two thresholds per label fitted together."""
    base = A.rubric_base()
    for param, candidates in SECOND.values():
        base[param] = candidates[0]
    firing = A.Firing(runs, base)
    held: dict[str, set[str]] = {}
    for fit_on, test_on in A.grouped_folds(truth, groups, folds):
        th = dict(base)
        for label, (param, candidates) in A.FITTED.items():
            grids = [[(param, v) for v in candidates]]
            if label in SECOND:
                grids.append([(SECOND[label][0], v) for v in SECOND[label][1]])
            combos = list(itertools.product(*grids))

            def f1(combo: tuple) -> float:
                on = firing.fires_with(label, combo)
                return A._prf(label, truth, {n: {label} if on.get(n) else set() for n in fit_on}, fit_on)[3]

            th.update(dict(max(combos, key=lambda c: (round(f1(c), 6), c == combos[0]))))
        held.update({n: A.predict(runs[n], th) for n in test_on})
    return A.score(truth, held)[1]


def measurements(run, labels: list[str], th: dict) -> np.ndarray:
    """The learned model's inputs for one curve (zeros for an unreadable one)."""
    if run is None:
        return np.zeros(len(labels) + 14)
    f = A.RunFeatures.from_run(run)
    rules = [max((x.confidence for x in evaluate(f, th, [label], f.last_stage())[0] if x.is_problem), default=0.0)
             for label in labels]
    out = [np.log(f.n)]
    x = C.fill_gaps(f.loss) if f.loss is not None else None
    if x is not None and x.size >= 4:
        pace, r2, rate = _straight_and_slow(x, th)
        first = float(C.finite(f.loss)[0])
        out += [min(pace, 3.0), r2, float(np.clip(rate, -1, 1)),
                float(np.clip((first - float(f.loss_trend[-1])) / max(abs(first), 1e-12), -2, 1))]
    else:
        out += [0.0] * 4
    noise = validation_noise(f)
    gain = f.val_improvement(th) if f.val_curves() else {}
    curves = f.val_curves()
    rise = rising_validation(f, {**th, "overfit_rise": 0.0}) if curves else None
    ok_err = f.bounded and f.train_err is not None and np.isfinite(f.train_err).any()
    out += [
        training_zigzag(f), len(loss_spikes(f, th)),
        float(np.mean(list(noise.values()))) if noise else 0.0,
        max((g[0] for g in gain.values()), default=0.0),
        float(np.clip(max((g[1] for g in gain.values()), default=0.0), -10, 10)),
        (C.settled_index(curves[0][1]) + 1) / f.n if curves else 1.0,
        (f.best_index(curves[0][1]) + 1) / f.n if curves else 1.0,
        float(np.clip(rise.rise, 0, 5)) if rise else 0.0,
        float(C.finite(f.train_err)[-1]) if ok_err else -1.0,
    ]
    return np.nan_to_num(np.array(rules + out, dtype=float), posinf=0.0, neginf=0.0)


def learned(truth, groups, runs, folds: int, strength: float) -> float:
    """Grouped-CV macro-F1 of per-label logistic regressions (inverse regularisation
    ``strength``); a label with fewer than two positives in the training folds falls
    back to its rule."""
    from sklearn.linear_model import LogisticRegression

    labels = sorted({l for v in truth.values() for l in v} - {"healthy"})
    th = A.advisor_defaults()
    names = sorted(truth)
    X = {n: measurements(runs[n], labels, th) for n in names}
    held = {n: set() for n in names}
    for fit_on, test_on in A.grouped_folds(truth, groups, folds):
        train = np.array([X[n] for n in fit_on])
        mean, std = train.mean(0), train.std(0) + 1e-9
        test = (np.array([X[n] for n in test_on]) - mean) / std
        for i, label in enumerate(labels):
            y = np.array([label in truth[n] for n in fit_on])
            if y.sum() < 2:
                pred = test[:, i] * std[i] + mean[i] > 0
            else:
                model = LogisticRegression(C=strength, class_weight="balanced", max_iter=2000)
                pred = model.fit((train - mean) / std, y).predict(test)
            for n, p in zip(test_on, pred):
                if p:
                    held[n].add(label)
    return A.score(truth, {n: v or {"healthy"} for n, v in held.items()})[1]


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")  # lbfgs convergence chatter on tiny folds
    base, folds = A.parse_args(argv)
    truth, groups, runs = A.load(base)
    start = time.perf_counter()
    print(f"grouped {folds}-fold CV macro-F1 on {len(truth)} curves:")
    print(f"  rules, one fitted threshold per label (shipped)   {A.cross_validate(truth, groups, runs, folds)[1]:.3f}")
    print(f"  rules, two thresholds per label fitted together   {two_thresholds(truth, groups, runs, folds):.3f}")
    for strength in (0.05, 0.3, 1.0):
        print(f"  logistic regression on rules + 14 measures, C={strength:<4}  {learned(truth, groups, runs, folds, strength):.3f}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
