"""Which regulariser acts on an unregularised small CNN with a few images per class?  (slow: ~20 min)

    python benchmarks/regularisers_small_data.py [--work DIR] [--jobs 2]

`recipes/digits_few.toml` with every regulariser off and a constant rate (the
``few/tiny_data_no_regularisation`` scenario of ``repair_scenarios.py``), 8 and 10 images
per class, seeds 11 and 5, 80 epochs; then one regulariser at a time. Prints test
accuracy per arm and the mean over the four runs. This is the measurement behind
`kadvisor.advisor.rules.generalisation.regularise` (dropout before weight decay when a
recipe has no dropout).
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from advice_repairs import fit_one, test_accuracy  # noqa: E402
from repair_scenarios import FEW, NO_REGULARISATION  # noqa: E402

AUGMENT = ("data.augment.translate=0.1", "data.augment.rotation=0.05", "data.augment.zoom=0.1")
ARMS = {
    "none": (),
    "weight decay 1e-4": ("optimizer.weight_decay=1e-4",),
    "weight decay 0.01": ("optimizer.weight_decay=0.01",),
    "weight decay 0.05": ("optimizer.weight_decay=0.05",),
    "label smoothing 0.1": ("loss.label_smoothing=0.1",),
    "dropout 0.2": ("model.dropout=0.2",),
    "augmentation": AUGMENT,
    "dropout + augmentation": ("model.dropout=0.2", *AUGMENT),
}
RUNS = [(seed, per_class) for seed in (11, 5) for per_class in (8, 10)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=os.path.join(ROOT, "benchmarks", "out", "regularisers"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    jobs = [(arm, seed, per_class) for arm in ARMS for seed, per_class in RUNS]

    def one(job):
        arm, seed, per_class = job
        overrides = [f"seed={seed}", f"data.max_per_class={per_class}", *NO_REGULARISATION,
                     "train.epochs=80", *ARMS[arm]]
        run_dir = os.path.join(args.work, f"{arm.replace(' ', '_').replace('+', 'and')}-s{seed}-m{per_class}")
        return job, test_accuracy(fit_one(os.path.join(ROOT, FEW), overrides, run_dir))

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(pool.map(one, jobs))
    print(f"{'regulariser':24s} " + " ".join(f"s{s}/m{m:<4d}" for s, m in RUNS) + "   mean")
    for arm in ARMS:
        row = [results[arm, s, m] for s, m in RUNS]
        print(f"{arm:24s} " + " ".join(f"{a:8.3f}" for a in row) + f"  {sum(row) / len(row):6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
