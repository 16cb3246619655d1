"""Fit one recipe on several seeds as is and with each of a few changes ("arms"), and
print the test accuracy table: shared by the benchmarks that ask which change helps."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from advice_repairs import fit_one, test_accuracy


def fit_arms(recipe: str, arms: dict[str, tuple[str, ...]], seeds: list[int], work: str, jobs: int,
             overrides: tuple[str, ...] = (), prefix: str = "") -> dict[tuple[str, int], float]:
    """Test accuracy of ``recipe`` (with ``overrides``) per (arm, seed); runs go to ``work``."""
    def one(job):
        arm, seed = job
        run_dir = os.path.join(work, f"{prefix}{arm.replace(' ', '_')}-s{seed}")
        return job, test_accuracy(fit_one(recipe, [f"seed={seed}", *overrides, *arms[arm]], run_dir))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(pool.map(one, [(arm, seed) for arm in arms for seed in seeds]))


def print_arms(results: dict[tuple[str, int], float], arms: dict, seeds: list[int], width: int = 24) -> None:
    """Per arm: accuracy per seed, mean, mean change against the first arm (points), and
    how many seeds moved up or down by a point or more."""
    baseline = next(iter(arms))
    print(f"{'arm':{width}s} " + " ".join(f"{'s' + str(s):>6s}" for s in seeds)
          + "   mean  change  up>=1pt  down>=1pt")
    for arm in arms:
        row = [results[arm, s] for s in seeds]
        deltas = [results[arm, s] - results[baseline, s] for s in seeds]
        print(f"{arm:{width}s} " + " ".join(f"{a:6.3f}" for a in row)
              + f"  {sum(row) / len(row):6.3f}  {100 * sum(deltas) / len(deltas):+5.2f}"
              + f"  {sum(d >= 0.01 for d in deltas):7d}  {sum(d <= -0.01 for d in deltas):9d}")
