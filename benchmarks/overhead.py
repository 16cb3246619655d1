"""kadvisor's training throughput against a hand-written `model.fit` (target ≥ 0.97).

    python benchmarks/overhead.py [--rounds 3] [--epochs 8]

Both sides train the same model (`build_model`) on the same `tf.data` pipeline
(`prepare_data`) with the same optimizer and loss; the hand-written side calls
`model.fit` with no callbacks at all, kadvisor runs its whole `fit` (history rows
fsynced every epoch, best-model checkpoint, live advisor, run directory). Rounds
alternate the two sides so drift on a noisy machine hits both.

Throughput is training images per second over the epochs after the first (which
traces the graph), timed between consecutive epoch starts, so it includes everything
that happens at an epoch end (checkpointing, validation, logging). Whole-job wall
times are printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import kadvisor.training.fit as fit_module  # noqa: E402
from kadvisor.data import prepare_data  # noqa: E402
from kadvisor.models import build_model  # noqa: E402
from kadvisor.recipe import load_recipe  # noqa: E402
from kadvisor.training.loop import (  # noqa: E402
    compile_for_stage, labels_for_loss, stage_spans, steps_per_epoch, with_labels,
)


class EpochClock(keras.callbacks.Callback):
    """Records wall and process-CPU time at every epoch start and at the end of training.

    CPU time is printed beside wall time because on a shared machine it is the steadier
    of the two: other processes' load changes wall time far more than CPU work.
    """

    def __init__(self):
        super().__init__()
        self.marks = []

    def on_epoch_begin(self, epoch, logs=None):
        self.marks.append((time.perf_counter(), time.process_time()))

    def on_train_end(self, logs=None):
        self.marks.append((time.perf_counter(), time.process_time()))

    def steady_seconds_per_epoch(self) -> tuple[float, float]:
        """Median (wall, cpu) seconds per epoch, the first (tracing) epoch left out."""
        gaps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(self.marks[1:], self.marks[2:])]
        return statistics.median(g[0] for g in gaps), statistics.median(g[1] for g in gaps)


def plain_keras(recipe):
    start = time.perf_counter()
    keras.utils.set_random_seed(recipe.seed)
    data = prepare_data(recipe)
    model = build_model(recipe, data.info.num_classes, tuple(data.info.image_shape))
    span = stage_spans(recipe)[0]
    train, validation = with_labels(data, recipe)
    compile_for_stage(model, span, data.info.num_classes, steps_per_epoch(train))
    clock = EpochClock()
    model.fit(train, validation_data=validation, epochs=recipe.train.epochs, verbose=0,
              shuffle=False, callbacks=[clock])
    model.evaluate(labels_for_loss(data.test, recipe, data.info.num_classes), verbose=0)
    return clock.steady_seconds_per_epoch(), time.perf_counter() - start


def with_kadvisor(recipe, out_dir):
    clock = EpochClock()
    original = fit_module._callbacks

    def instrumented(*args, **kwargs):
        return [*original(*args, **kwargs), clock]  # last: sees every other epoch-end cost

    fit_module._callbacks = instrumented
    try:
        start = time.perf_counter()
        fit_module.fit(recipe, out_dir, quiet=True)
        total = time.perf_counter() - start
    finally:
        fit_module._callbacks = original
    return clock.steady_seconds_per_epoch(), total


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
        ratio = statistics.median(p[0][i] / k[0][i] for p, k in zip(plain, ours))
        print(f"throughput ratio kadvisor/plain ({clock} time): {ratio:.3f} (target >= 0.97)")

if __name__ == "__main__":
    main()
