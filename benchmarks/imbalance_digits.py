"""Balancing methods side by side on long-tailed digits (smallest class 5% of the largest).

    python benchmarks/imbalance_digits.py [--seeds 3] [--epochs 30] [--augment] [--methods none,focal,...]

Trains recipes/digits_imbalanced.toml (training split long-tailed by data.imbalance =
0.05: 124 images of digit 0 down to 6 of digit 9; balanced validation and test splits)
once per method and seed, then scores each best model on the balanced test split with
`kadvisor evaluate`. Prints macro-F1 and worst-class recall (mean ± std over seeds) per
method; exits 1 unless at least one balancing method beats "none" on mean macro-F1.
The seed changes the splits, the initial weights and the shuffling together.

Augmentation is switched off unless --augment is given: it is itself a strong remedy
for a rare class (six images shifted, turned and zoomed become many), and with it the
digits are learned to ~98% whatever the balancing, which hides the methods' effect.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

RECIPE = os.path.join(ROOT, "recipes", "digits_imbalanced.toml")
METHODS = {
    "none": [],
    "class_weight": [("data.balance", "class_weight")],
    "oversample": [("data.balance", "oversample")],
    "focal": [("loss.name", "focal")],
    "undersample": [("data.balance", "undersample")],
}


NO_AUGMENT = [("data.augment.translate", 0.0), ("data.augment.rotation", 0.0),
              ("data.augment.zoom", 0.0)]


def run_method(name: str, seed: int, epochs: int, out: str, augment: bool) -> dict:
    """Trains one method with one seed; returns its test-split evaluation."""
    from kadvisor import fit
    from kadvisor.evaluation.evaluate import evaluate_run
    from kadvisor.recipe import load_recipe

    recipe = load_recipe(RECIPE)
    overrides = [*METHODS[name], *([] if augment else NO_AUGMENT), ("seed", seed),
                 ("name", f"{name}-{seed}"), ("advisor.live", False)]
    start = time.perf_counter()
    run = fit(recipe, out, overrides=overrides, epochs=epochs, quiet=True)
    results = evaluate_run(run.path).results
    results["seconds"] = time.perf_counter() - start
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--augment", action="store_true", help="keep the recipe's augmentation")
    parser.add_argument("--methods", default="none,class_weight,oversample,focal")
    parser.add_argument("--out", help="keep the run directories here (default: a temp dir)")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "none" not in methods:
        parser.error(f"--methods: expected 'none' and some of {', '.join(METHODS)}; got {args.methods}")

    out = args.out or tempfile.mkdtemp(prefix="imbalance-")
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for seed in range(args.seeds):
        for method in methods:
            r = run_method(method, seed, args.epochs, out, args.augment)
            results[method].append(r)
            print(f"seed {seed} {method:<12} macro-F1 {r['macro_f1']:.4f}  worst-class recall "
                  f"{r['worst_recall']:.4f} ({r['worst_class']})  accuracy {r['accuracy']:.4f}  "
                  f"{r['seconds']:.0f} s", flush=True)

    def stat(method, key):
        values = [r[key] for r in results[method]]
        return float(np.mean(values)), float(np.std(values))

    print(f"\nlong-tailed digits, {args.seeds} seeds x {args.epochs} epochs, augmentation "
          f"{'on' if args.augment else 'off'}, balanced test split (360 images); mean ± std over seeds")
    print(f"{'method':<14}{'macro-F1':>18}{'worst-class recall':>22}{'accuracy':>18}{'recall of 9':>14}")
    for method in methods:
        f1, rec, acc = stat(method, "macro_f1"), stat(method, "worst_recall"), stat(method, "accuracy")
        rare = np.mean([r["per_class"]["9"]["recall"] for r in results[method]])
        print(f"{method:<14}{f1[0]:>11.4f} ± {f1[1]:.4f}{rec[0]:>15.4f} ± {rec[1]:.4f}"
              f"{acc[0]:>11.4f} ± {acc[1]:.4f}{rare:>14.4f}")
    baseline = stat("none", "macro_f1")[0]
    best = max((m for m in methods if m != "none"), key=lambda m: stat(m, "macro_f1")[0])
    gain = stat(best, "macro_f1")[0] - baseline
    # The seeds' standard error of the difference says whether the gain is more than noise.
    noise = np.hypot(stat(best, "macro_f1")[1], stat("none", "macro_f1")[1]) / np.sqrt(args.seeds)
    print(f"\nbest balancing method: {best}, macro-F1 {gain:+.4f} vs none "
          f"(standard error over seeds ~{noise:.4f})")
    print(f"run directories: {out}")
    return 0 if gain > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
