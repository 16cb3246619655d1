"""Hyperband vs random search on digits, and coarse-to-fine on a subsample.

    python benchmarks/tune_digits.py [--max-epochs 9] [--factor 3] [--out DIR]

Three searches over recipes/digits_tune.toml's [search.space], run one after the
other in this process, each printing its best validation accuracy, the epochs it
trained and its wall time:

1. Hyperband (max_epochs, factor) on all the training data;
2. random search at the same total epoch budget: as many trials of max_epochs
   epochs as Hyperband's epochs allow;
3. Hyperband on a 25% subsample of the training split, then its top 3 (distinct)
   trials trained on all the data for max_epochs epochs (`kadvisor.tuning.confirm`).

Every arm is scored on the same validation split (a subsample shrinks only the
training split). The searches' figures are their best trial's score, the best of
many tries; the confirmed figure is a fresh training run of the chosen values.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kadvisor.tuning import confirm, tune  # noqa: E402

RECIPE = os.path.join(ROOT, "recipes", "digits_tune.toml")


def search(out, name, sets):
    start = time.perf_counter()
    result = tune(RECIPE, out=os.path.join(out, name), overrides=sets)
    return result, time.perf_counter() - start


def main(max_epochs: int, factor: int, out: str) -> int:
    budget = [f"search.max_epochs={max_epochs}", f"search.factor={factor}"]
    hyperband, hb_seconds = search(out, "hyperband", [*budget, "search.subsample=1.0"])
    epochs = hyperband.epochs_trained
    trials = max(1, round(epochs / max_epochs))
    random, rs_seconds = search(out, "random", ["search.algorithm=random", f"search.max_trials={trials}",
                                                f"train.epochs={max_epochs}", "search.subsample=1.0"])
    coarse, coarse_seconds = search(out, "subsample", [*budget, "search.subsample=0.25"])
    start = time.perf_counter()
    confirmed = confirm(coarse.path, top=3, epochs=max_epochs)
    confirm_seconds = time.perf_counter() - start
    confirm_epochs = sum(c.run.metrics.get("epochs", 0) for c in confirmed)

    print(f"digits, recipes/digits_tune.toml space, max_epochs={max_epochs}, factor={factor}; "
          f"validation accuracy on the same {len_validation(hyperband)}-image validation split")
    print(f"{'search':<46}{'best val_accuracy':>18}{'trials':>8}{'epochs':>9}{'wall s':>9}")
    row("Hyperband, all data", hyperband.best.score, len(hyperband.rows), epochs, hb_seconds)
    row(f"random, equal budget ({trials} x {max_epochs} epochs)", random.best.score, len(random.rows),
        random.epochs_trained, rs_seconds)
    row("Hyperband, 25% subsample (search only)", coarse.best.score, len(coarse.rows),
        coarse.epochs_trained, coarse_seconds)
    best = confirmed[0] if confirmed else None
    row("  + top 3 confirmed on all data", best.score if best else math.nan, len(confirmed),
        coarse.epochs_trained + confirm_epochs, coarse_seconds + confirm_seconds)
    print(f"  (subsample arm: {coarse.epochs_trained} epochs at 25% + {confirm_epochs} full epochs = "
          f"{0.25 * coarse.epochs_trained + confirm_epochs:.1f} full-data epoch equivalents; confirmed: "
          + ", ".join(f"trial {c.trial.trial_id} {c.trial.score:.4f} -> {c.score:.4f}" for c in confirmed) + ")")
    return 0


def len_validation(result) -> str:
    from kadvisor.data import prepare_data
    from kadvisor.recipe import load_recipe

    info = prepare_data(load_recipe(result.path / "search.toml"), batched=False).info
    return str(info.splits["validation"]["size"])


def row(name, score, trials, epochs, seconds):
    print(f"{name:<46}{score:>18.4f}{trials:>8}{epochs:>9}{seconds:>9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--factor", type=int, default=3)
    parser.add_argument("--out", help="keep the tuning directories here (default: a temporary folder)")
    args = parser.parse_args()
    if args.out:
        sys.exit(main(args.max_epochs, args.factor, args.out))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(args.max_epochs, args.factor, tmp))
