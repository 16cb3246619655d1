"""5-fold models of the digits, each alone vs their ensemble, on the common test split.

    python benchmarks/ensemble_digits.py [--folds 5] [--epochs N] [--recipe recipes/digits.toml]

Runs `kadvisor fit RECIPE --kfold 5` (every fold trains on 80% of the non-test data and
validates on the rest; all folds share the stratified 20% test split), then
`kadvisor ensemble` on the K-fold parent with the averaged probabilities and with the
majority vote. Prints each member, the members' mean and both ensembles. --epochs
(default: the recipe's) below the recipe's 30 leaves the members weaker.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="override train.epochs (default: the recipe's)")
    parser.add_argument("--recipe", default=os.path.join(ROOT, "recipes", "digits.toml"))
    parser.add_argument("--out", help="keep the run directories here (default: a temp dir)")
    args = parser.parse_args()

    from kadvisor.evaluation.ensemble import ensemble_runs
    from kadvisor.training.kfold import fit_kfold

    out = args.out or tempfile.mkdtemp(prefix="ensemble-")
    start = time.perf_counter()
    cv = fit_kfold(args.recipe, out, folds=args.folds, epochs=args.epochs, quiet=True,
                   overrides=["advisor.live=false"])
    print(f"{args.folds}-fold training: {time.perf_counter() - start:.0f} s, {cv.path}")
    print("cross-validation (mean ± std over folds):")
    for line in cv.summary_lines():
        print("  " + line)
    mean_result = ensemble_runs([cv.path], "mean")
    vote = ensemble_runs([cv.path], "vote")
    print()
    for line in mean_result.summary_lines():
        print(line)
    print(vote.summary_lines()[-1])
    members = [s["accuracy"] for _, s in mean_result.members]
    print(f"\nensemble accuracy {mean_result.ensemble['accuracy']:.4f} (mean) / "
          f"{vote.ensemble['accuracy']:.4f} (vote) vs best member {max(members):.4f}, "
          f"members' mean {sum(members) / len(members):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
