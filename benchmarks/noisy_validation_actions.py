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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from repair_scenarios import FEW  # noqa: E402
from seed_arms import fit_arms, print_arms  # noqa: E402

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
    results = fit_arms(os.path.join(ROOT, FEW), ARMS, args.seeds, args.work, args.jobs)
    print_arms(results, ARMS, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
