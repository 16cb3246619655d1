"""Side-by-side timing of kadvisor's `fit` and a hand-written `model.fit` (shared by
benchmarks/overhead.py and benchmarks/throughput.py).

Both sides train the same model (`build_model`) on the same `tf.data` pipeline
(`prepare_data`) with the same optimizer, loss, precision and XLA setting; the
hand-written side calls `model.fit` with no callbacks, kadvisor runs its whole `fit`
(history rows fsynced every epoch, checkpoint, live advisor, run directory).
Throughput is timed between consecutive epoch starts, the first (tracing) epoch left
out, so it includes everything that happens at an epoch end.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import kadvisor.training.fit as fit_module  # noqa: E402
from kadvisor.data import prepare_data  # noqa: E402
from kadvisor.models import build_model  # noqa: E402
from kadvisor.training.devices import precision  # noqa: E402
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
    """Hand-written loop: returns ((wall, cpu) seconds per epoch, whole-job seconds)."""
    start = time.perf_counter()
    keras.utils.set_random_seed(recipe.seed)
    data = prepare_data(recipe)
    with precision(recipe.train.precision):
        model = build_model(recipe, data.info.num_classes, tuple(data.info.image_shape))
        span = stage_spans(recipe)[0]
        train, validation = with_labels(data, recipe)
        compile_for_stage(model, span, data.info.num_classes, steps_per_epoch(train))
        clock = EpochClock()
        model.fit(train, validation_data=validation, epochs=recipe.train.epochs, verbose=0,
                  shuffle=False, callbacks=[clock])
        if data.test is not None:
            model.evaluate(labels_for_loss(data.test, recipe, data.info.num_classes), verbose=0)
    return clock.steady_seconds_per_epoch(), time.perf_counter() - start


def with_kadvisor(recipe, out_dir):
    """`kadvisor.fit`: returns ((wall, cpu) seconds per epoch, whole-job seconds)."""
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


def ratio(plain: list, ours: list, clock: int) -> float:
    """Median over rounds of kadvisor's throughput relative to plain Keras (0 = wall, 1 = CPU)."""
    return statistics.median(p[0][clock] / k[0][clock] for p, k in zip(plain, ours))
