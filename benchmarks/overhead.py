"""kadvisor's training throughput against a hand-written `model.fit` (target ≥ 0.97).

    python benchmarks/overhead.py [--rounds 3] [--epochs 8]

The digits recipe, trained by both sides of `benchmarks/timing.py`; rounds alternate
the two sides so drift on a noisy machine hits both. Whole-job wall times are printed
too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from timing import ROOT, plain_keras, ratio, with_kadvisor

from kadvisor.recipe import load_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    recipe = load_recipe(os.path.join(ROOT, "recipes", "digits.toml"),
                         [f"train.epochs={args.epochs}", "schedule.name=constant"])
    images = 1257  # digits training split
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as out_dir:
        for r in range(args.rounds):
            plain.append(plain_keras(recipe))
            ours.append(with_kadvisor(recipe, out_dir))
            print(f"round {r + 1}: plain {images / plain[-1][0][0]:6.0f} img/s, "
                  f"kadvisor {images / ours[-1][0][0]:6.0f} img/s (wall)")
    for name, runs in (("plain Keras model.fit", plain), ("kadvisor fit", ours)):
        wall = statistics.median(r[0][0] for r in runs)
        cpu = statistics.median(r[0][1] for r in runs)
        total = statistics.median(r[1] for r in runs)
        print(f"{name:22s}: {images / wall:6.0f} img/s wall, {images / cpu:6.0f} img/CPU-s; "
              f"whole job {total:.1f} s")
    for i, clock in ((0, "wall"), (1, "CPU")):
        print(f"throughput ratio kadvisor/plain ({clock} time): {ratio(plain, ours, i):.3f} (target >= 0.97)")

if __name__ == "__main__":
    main()
