"""Times `kadvisor diagnose` on a 1,000-epoch log and on a TensorBoard directory.

    python benchmarks/diagnose_speed.py [EPOCHS]

Targets: well under a second for the CSV log; under 1.5 s for the whole command on a
TensorBoard directory started cold (issue 13). Writes a synthetic noisy CSVLogger file and
the same curves as TensorBoard event files in Keras's layout (``train/`` and
``validation/``, ``epoch_loss``, ``epoch_accuracy``; written with tensorboardX, which
needs no TensorFlow), then times reading + diagnosing + rendering (median of 5 runs in
this process), and each whole command started as a new process (interpreter start-up and
imports included); checks that TensorFlow/Keras were not imported.
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


def write_events(log_dir: str, loss, val) -> None:
    """The curves as Keras's TensorBoard callback lays them out (epoch scalars)."""
    from tensorboardX import SummaryWriter

    for split, curve in (("train", loss), ("validation", val)):
        writer = SummaryWriter(os.path.join(log_dir, split))
        for i, value in enumerate(curve):
            writer.add_scalar("epoch_loss", float(value), i)
            writer.add_scalar("epoch_accuracy", float(1 - value / 3), i)
        writer.close()


def cold_seconds(target: str) -> float:
    """Wall time of ``kadvisor diagnose TARGET`` as a new process (median of 3)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kadvisor.cli", "diagnose", target], check=True,
                       capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        cold = cold_seconds(path)  # the whole command: interpreter, imports, report
        events = os.path.join(tmp, "tensorboard")
        write_events(events, loss, val)
        tb_times = []
        for _ in range(5):
            start = time.perf_counter()
            diagnose_command(events, fmt="json", echo=lambda s: None)
            tb_times.append(time.perf_counter() - start)
        tb_cold = cold_seconds(events)
    heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")]
    print(f"CSV log, {epochs} epochs: {1000 * statistics.median(times):.1f} ms in process "
          f"(median of 5); `kadvisor diagnose` as a new process: {1000 * cold:.0f} ms")
    print(f"TensorBoard directory, {epochs} epochs: {1000 * statistics.median(tb_times):.1f} ms "
          f"in process; `kadvisor diagnose` as a new process: {1000 * tb_cold:.0f} ms "
          f"(target < 1500 ms)")
    print(f"tensorflow/keras imported: {bool(heavy)}")
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
