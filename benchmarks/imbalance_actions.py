"""Which remedy for skewed classes should class_imbalance put first?  (slow: ~15 min)

    python benchmarks/imbalance_actions.py [--work DIR] [--jobs 2] [--seeds 1 2 ...]
                                           [--imbalance 0.05]

Both base recipes (``recipes/digits.toml``, ``recipes/digits_few.toml``) with long-tailed
training classes (``data.imbalance``: the rarest class keeps this fraction of its images;
the test split stays balanced), fitted on several seeds as is and with each action the
finding offers: class weights, oversampling, focal loss. Prints the fixed test split's
accuracy per seed and arm, each arm's mean change against the skewed recipe as is, and how
often it moved the test accuracy by a point or more either way. The repair benchmark saw
class weights both gain (0.978 -> 0.989) and lose (0.992 -> 0.972) on refits of one
held-out run; this says which remedy is best on average. Uses the shipped scenarios'
magnitude (1:20), not the held-out one.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from repair_scenarios import DIGITS, FEW  # noqa: E402
from seed_arms import fit_arms, print_arms  # noqa: E402

ARMS = {
    "as is": (),
    "class_weight": ('data.balance="class_weight"',),
    "oversample": ('data.balance="oversample"',),
    "focal loss": ('loss.name="focal"',),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=os.path.join(ROOT, "benchmarks", "out", "imbalance"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 7)))
    parser.add_argument("--imbalance", type=float, default=0.05)
    args = parser.parse_args(argv)
    bases = {"digits": DIGITS, "few": FEW}
    for base, recipe in bases.items():
        results = fit_arms(os.path.join(ROOT, recipe), ARMS, args.seeds, args.work, args.jobs,
                           (f"data.imbalance={args.imbalance}",), prefix=f"{base}-")
        print(f"\n{base} (data.imbalance={args.imbalance})")
        print_arms(results, ARMS, args.seeds, width=14)
    return 0


if __name__ == "__main__":
    sys.exit(main())
