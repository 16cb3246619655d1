"""Bilinear heads side by side: forward+backward time, peak memory, classifier size.

    python benchmarks/bilinear_speed.py [--batch 8] [--size 28] [--channels 512]
                                        [--dim 8192] [--classes 200] [--repeats 5] [--xla]

Defaults are VGG16 conv5_3 features of a 448×448 image (28×28×512), batch 8, Tensor
Sketch to d = 8192, 200 classes (CUB-200-2011). Each head runs the step a backbone would
run: features → head → signed sqrt → L2 → Dense(classes) → cross-entropy, gradients for
the features and the classifier. Heads:

    full        BilinearPooling: C² = 262,144 features
    naive_ts    Tensor Sketch as first published: count sketches by a dense C×d matrix,
                one rFFT pair and one inverse FFT per location, then the sum
    ours_fft    CompactBilinearPooling's FFT route: scatter count sketches, spectra
                summed over locations, one inverse FFT per image
    ours        CompactBilinearPooling as it runs (it takes the cheaper of its two exact
                routes; at VGG16's shape that is the Gram route)
    rm          Random Maclaurin (two dense C×d projections)

Each head is measured in its own subprocess (so peak memory is its own): the median step
time of ``--repeats`` steps after a warm-up, and the peak of resident memory (CPU) or of
TensorFlow's allocator (GPU) above what the process held before the first step. Targets:
ours ≥ 3× faster than naive_ts, classifier ≥ 30× smaller than full's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HEADS = ("full", "naive_ts", "ours_fft", "ours", "rm")


def _naive_tensor_sketch(x, sketch_1, sketch_2, output_dim):
    """Sum over locations of irfft(rfft(x S1) * rfft(x S2)), S dense C×d ±1/0 matrices."""
    import tensorflow as tf

    batch, channels = tf.shape(x)[0], x.shape[-1]
    flat = tf.reshape(x, (-1, channels))
    spectrum = tf.signal.rfft(flat @ sketch_1) * tf.signal.rfft(flat @ sketch_2)
    per_location = tf.signal.irfft(spectrum, fft_length=[output_dim])
    return tf.reduce_sum(tf.reshape(per_location, (batch, -1, output_dim)), axis=1)


def _pooling(name, channels, dim):
    """Returns a function features (B, H, W, C) -> pooled (B, D), and D."""
    import numpy as np
    import tensorflow as tf

    from kadvisor.models.heads import compact_bilinear as cb
    from kadvisor.models.heads.bilinear_layers import BilinearPooling

    if name == "full":
        return BilinearPooling(), channels * channels
    if name in ("ours", "rm"):
        method = "tensor_sketch" if name == "ours" else "random_maclaurin"
        return cb.CompactBilinearPooling(dim, method=method, seed=0), dim
    p = {k: tf.constant(v) for k, v in cb.draw_sketch_parameters("tensor_sketch", 0, channels, channels, dim).items()}
    if name == "ours_fft":
        def fft_route(x):
            flat = tf.reshape(x, (tf.shape(x)[0], -1, channels))
            return cb.tensor_sketch_pool(flat, flat, p["hash_1"], p["sign_1"], p["hash_2"], p["sign_2"], dim)

        return fft_route, dim
    dense = []
    for i in (1, 2):
        matrix = np.zeros((channels, dim), "float32")
        matrix[np.arange(channels), p[f"hash_{i}"].numpy()] = p[f"sign_{i}"].numpy()
        dense.append(tf.constant(matrix))
    return (lambda x: _naive_tensor_sketch(x, dense[0], dense[1], dim)), dim


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(name: str, args) -> dict:
    """Runs one head in this process; returns its figures."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kadvisor.models.heads.bilinear_layers import L2Normalize, SignedSqrt

    pool, pooled_dim = _pooling(name, args.channels, args.dim)
    sqrt, l2 = SignedSqrt(), L2Normalize()
    classifier = keras.layers.Dense(args.classes)
    classifier.build((None, pooled_dim))
    rng = np.random.default_rng(0)
    features = tf.constant(rng.uniform(0, 1, (args.batch, args.size, args.size, args.channels)).astype("float32"))
    labels = tf.constant(rng.integers(0, args.classes, args.batch))

    @tf.function(jit_compile=args.xla)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = classifier(l2(sqrt(pool(x))))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return tape.gradient(loss, [x, *classifier.trainable_variables])

    gpu = bool(tf.config.list_physical_devices("GPU"))
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
        before = tf.config.experimental.get_memory_info("GPU:0")["current"] / 2**20
    else:
        before = _rss_mb()
    [g.numpy() for g in step(features)]  # warm-up: tracing (and XLA compilation)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        [g.numpy() for g in step(features)]
        times.append(time.perf_counter() - start)
    if gpu:
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20 - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    return {"head": name, "ms": 1000 * statistics.median(times), "peak_mb": peak,
            "classifier_params": int(classifier.count_params()), "device": "GPU" if gpu else "CPU"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=28, help="feature map height and width")
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--dim", type=int, default=8192, help="compact output dimension d")
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--xla", action="store_true", help="compile the step with XLA (as Keras fit does)")
    parser.add_argument("--heads", default=",".join(HEADS), help=f"comma-separated subset of {HEADS}")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one head, print JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args)))
        return 0

    rows = {}
    for name in args.heads.split(","):
        command = [sys.executable, os.path.abspath(__file__), *(argv or sys.argv[1:]), "--one", name]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr.strip().splitlines()[-1] if done.stderr else ''}")
            continue
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
    device = next(iter(rows.values()))["device"] if rows else "?"
    print(f"batch {args.batch}, features {args.size}x{args.size}x{args.channels}, d = {args.dim}, "
          f"{args.classes} classes, {device}{', XLA' if args.xla else ''}, median of {args.repeats} steps")
    print(f"{'head':10s} {'fwd+bwd ms':>11s} {'peak MB':>9s} {'classifier params':>18s}")
    for row in rows.values():
        print(f"{row['head']:10s} {row['ms']:11.1f} {row['peak_mb']:9.0f} {row['classifier_params']:18,d}")
    if {"naive_ts", "ours"} <= rows.keys():
        print(f"ours vs naive_ts: {rows['naive_ts']['ms'] / rows['ours']['ms']:.1f}x faster (target >= 3x)")
    if {"naive_ts", "ours_fft"} <= rows.keys():
        print(f"ours_fft vs naive_ts: {rows['naive_ts']['ms'] / rows['ours_fft']['ms']:.1f}x faster")
    if {"full", "ours"} <= rows.keys():
        ratio = rows["full"]["classifier_params"] / rows["ours"]["classifier_params"]
        print(f"classifier: full / ours = {ratio:.1f}x smaller (target >= 30x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
