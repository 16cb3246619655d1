"""The main job: `kadvisor fit recipes/digits.toml` — test accuracy and wall time.

    python benchmarks/fit_digits.py

Targets: test accuracy ≥ 0.99 on the stratified 20 % test split, ≤ 90 s wall time on
2 CPU cores including start-up. Runs the real command in a fresh process (so import
and TensorFlow start-up count), and prints scikit-learn's SVC on the same split, at the
digits' native 8×8, as the reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "recipes", "digits.toml")


def svc_reference() -> float:
    """SVC (scikit-learn defaults) on kadvisor's own train/test split of the digits."""
    sys.path.insert(0, ROOT)
    from sklearn.svm import SVC

    from kadvisor.data import load_split_arrays
    from kadvisor.recipe import load_recipe

    recipe = load_recipe(RECIPE, ["data.image_size=[8, 8]"])
    x_train, y_train = load_split_arrays(recipe, "train")
    x_test, y_test = load_split_arrays(recipe, "test")
    model = SVC().fit(x_train.reshape(len(x_train), -1), y_train)
    return float(model.score(x_test.reshape(len(x_test), -1), y_test))


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run(["kadvisor", "fit", RECIPE, "--quiet", "--out", out],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"kadvisor fit failed:\n{done.stderr}")
        run_dir = done.stdout.strip().splitlines()[-1]
        with open(os.path.join(run_dir, "metrics.json")) as f:
            metrics = json.load(f)
    accuracy = metrics["test"]["accuracy"]
    print(f"kadvisor fit recipes/digits.toml: test accuracy {accuracy:.4f} "
          f"({round(accuracy * 360)}/360), wall {wall:.1f} s incl. start-up, "
          f"{metrics['epochs']} epochs in {metrics['seconds']:.1f} s")
    print(f"reference SVC on the same split (8x8): test accuracy {svc_reference():.4f}")
    print(f"targets: accuracy >= 0.99 -> {'met' if accuracy >= 0.99 else 'MISSED'}; "
          f"wall <= 90 s -> {'met' if wall <= 90 else 'MISSED'}")


if __name__ == "__main__":
    main()
