"""Times `kadvisor diagnose` on a 1,000-epoch log (target: well under a second).

    python benchmarks/diagnose_speed.py [EPOCHS]

Writes a synthetic noisy CSVLogger file, then times reading + diagnosing + rendering
(median of 5 runs in this process), and the whole command started as a new process
(interpreter start-up and imports included); checks that TensorFlow/Keras were not
imported.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from kadvisor.advisor.command import diagnose_command  # noqa: E402


def main(epochs: int = 1000) -> int:
    rng = np.random.default_rng(0)
    t = np.arange(epochs)
    loss = 0.1 + 2 * np.exp(-t / 100) + rng.normal(0, 0.01, epochs)
    val = 0.3 + 2 * np.exp(-t / 80) + 0.0002 * t + rng.normal(0, 0.03, epochs)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "log.csv")
        with open(path, "w") as fh:
            fh.write("epoch,accuracy,loss,lr,val_accuracy,val_loss\n")
            for i in range(epochs):
                fh.write(f"{i},{1 - loss[i] / 3},{loss[i]},0.001,{1 - val[i] / 3},{val[i]}\n")
        times = []
        for _ in range(5):
            start = time.perf_counter()
            diagnose_command(path, fmt="json", echo=lambda s: None)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()  # the whole command, cold: interpreter, imports, report
        subprocess.run([sys.executable, "-m", "kadvisor.cli", "diagnose", path], check=True,
                       capture_output=True, cwd=ROOT)
        cold = time.perf_counter() - start
    heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")]
    print(f"diagnose of a {epochs}-epoch log: {1000 * statistics.median(times):.1f} ms "
          f"(median of 5); `kadvisor diagnose` as a new process: {1000 * cold:.0f} ms; "
          f"tensorflow/keras imported: {bool(heavy)}")
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
