"""Training throughput on the big models: precision, XLA, and kadvisor vs plain Keras.

    python benchmarks/throughput.py            # for a GPU: ResNet50 @ 224, VGG16 + TS @ 448
    python benchmarks/throughput.py --quick    # CPU-sized: same models at 64 / 96 px

For each model — ResNet50 + GAP at 224×224, and VGG16 conv5_3 + compact bilinear
(Tensor Sketch, d = 8192) at 448×448 — and each of float32 / mixed precision × XLA
off / on, prints images per second of `kadvisor fit` and of a hand-written
`model.fit` with the same settings (see benchmarks/timing.py), and their ratio.
Data: random images written once to an .npz file (no download), weights "none" (the
speed of a layer does not depend on its weights). Mixed precision is float16 on a GPU
and bfloat16 on a CPU (CPUs have no fast float16 kernels).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from timing import plain_keras, with_kadvisor

from kadvisor.recipe import recipe_from_dict

MODELS = {
    # name: (model section, full size, quick size)
    "resnet50-gap": ({"backbone": "resnet50", "head": "gap"}, 224, 64),
    "vgg16-ts8192": ({"backbone": "vgg16", "head": "compact_bilinear", "pooling_dim": 8192,
                      "sketch": "tensor_sketch"}, 448, 96),
}


def _npz(folder: Path, size: int, images: int, classes: int = 10) -> str:
    path = folder / f"random-{size}.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (images, size, size, 3), dtype=np.uint8)
        np.savez(path, x=x, y=np.arange(images) % classes)
    return f"npz:{path}"


def _recipe(model: dict, source: str, size: int, batch: int, epochs: int, policy: str, xla: str):
    return recipe_from_dict({
        "name": "throughput",
        "data": {"source": source, "image_size": [size, size], "channels": 3,
                 "val_fraction": 0.0, "test_fraction": 0.0, "cache": True},
        "model": {**model, "weights": "none"},
        "optimizer": {"name": "sgd", "learning_rate": 1e-3},
        "train": {"epochs": epochs, "batch_size": batch, "precision": policy, "jit_compile": xla,
                  "monitor": "loss"},
        "advisor": {"live": True},
    })


def main() -> None:
    import tensorflow as tf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU-sized inputs")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="the first one is not timed")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    gpu = bool(tf.config.list_logical_devices("GPU"))
    mixed = "mixed_float16" if gpu else "mixed_bfloat16"
    images = args.batch * args.steps
    print(f"device: {'GPU' if gpu else 'CPU'}; batch {args.batch}, {args.steps} steps per epoch, "
          f"{args.epochs} epochs (first untimed)")
    print(f"{'model':14s} {'size':>4s} {'precision':15s} {'xla':4s} {'kadvisor':>9s} {'plain':>9s} {'ratio':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.models.split(","):
            model, full, quick = MODELS[name]
            size = quick if args.quick else full
            source = _npz(folder, size, images)
            for policy in ("float32", mixed):
                for xla in ("off", "on"):
                    recipe = _recipe(model, source, size, args.batch, args.epochs, policy, xla)
                    (plain, _), (ours, _) = plain_keras(recipe), with_kadvisor(recipe, folder / "runs")
                    print(f"{name:14s} {size:4d} {policy:15s} {xla:4s} {images / ours[0]:9.1f} "
                          f"{images / plain[0]:9.1f} {plain[0] / ours[0]:6.3f}", flush=True)
    print("img/s of training (wall time); ratio = kadvisor / plain Keras throughput")


if __name__ == "__main__":
    main()
