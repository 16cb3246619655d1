"""What does noisy_validation's advice do to a healthy small-data run?  (slow: ~10 min)

    python benchmarks/noisy_validation_actions.py [--work DIR] [--jobs 2] [--seeds 1 2 ...]

`recipes/digits_few.toml` (200 training images, 20 per class; 180 validation images;
healthy, but its validation curves zig-zag, so ``noisy_validation`` fires) fitted on
several seeds as is, then with each of the actions that finding suggests. Prints the fixed
test split's accuracy per seed and arm, each arm's mean change against the recipe as is,
and how often it moved the test accuracy by a point or more either way. The held-out
repair run of 2026-12-04 counted one such control as harmed (``data.val_fraction`` 0.1 ->
0.2: 0.969 -> 0.958); this says whether that is the action or refit noise. (A larger
validation fraction keeps the 200 training images but draws them differently.)
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from advice_repairs import fit_one, test_accuracy  # noqa: E402
from repair_scenarios import FEW  # noqa: E402

ARMS = {
    "as is": (),
    "data.val_fraction 0.2": ("data.val_fraction=0.2",),
    "train.batch_size 64": ("train.batch_size=64",),
    "learning rate x0.5": ("optimizer.learning_rate=1.5e-3",),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=os.path.join(ROOT, "benchmarks", "out", "noisy_validation"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 13)))
    args = parser.parse_args(argv)
    jobs = [(arm, seed) for arm in ARMS for seed in args.seeds]

    def one(job):
        arm, seed = job
        run_dir = os.path.join(args.work, f"{arm.replace(' ', '_')}-s{seed}")
        return job, test_accuracy(fit_one(os.path.join(ROOT, FEW), [f"seed={seed}", *ARMS[arm]], run_dir))

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(pool.map(one, jobs))
    print(f"{'arm':24s} " + " ".join(f"{'s' + str(s):>6s}" for s in args.seeds)
          + "   mean  change  up>=1pt  down>=1pt")
    for arm in ARMS:
        row = [results[arm, s] for s in args.seeds]
        deltas = [results[arm, s] - results["as is", s] for s in args.seeds]
        print(f"{arm:24s} " + " ".join(f"{a:6.3f}" for a in row)
              + f"  {sum(row) / len(row):6.3f}  {100 * sum(deltas) / len(deltas):+5.2f}"
              + f"  {sum(d >= 0.01 for d in deltas):7d}  {sum(d <= -0.01 for d in deltas):9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
