"""The findings beside the curves: a TensorBoard text summary in the run directory.

``kadvisor diagnose RUN`` writes its markdown report to
``RUN/tensorboard/diagnosis/``, so ``tensorboard --logdir runs`` shows the advice in
its Text tab next to the curves it is about. One event file with a fixed name is
replaced atomically, so diagnosing again updates it rather than adding files. Written
only where ``fit`` wrote TensorBoard logs (``train.tensorboard``), without TensorFlow.
"""

from __future__ import annotations

import math
import os

from kadvisor import rundir
from kadvisor.advisor.readers.events import DIAGNOSIS_EVENTS, text_summary_file
from kadvisor.advisor.readers.tensorboard import TENSORBOARD_DIR

SUMMARY_DIR = "diagnosis"


def write_findings_summary(run_dir: str, markdown: str, run) -> str | None:
    """Writes ``markdown`` as the ``diagnosis`` text summary of ``run_dir``'s TensorBoard logs.

    Args:
        run_dir: The run directory.
        markdown: The report.
        run: The diagnosed `Run` (its last epoch is the summary's step).

    Returns:
        The event file written, or None when the run has no TensorBoard logs.
    """
    logs = os.path.join(run_dir, TENSORBOARD_DIR)
    if not os.path.isdir(logs) or os.path.islink(logs):
        return None
    folder = os.path.join(logs, SUMMARY_DIR)
    os.makedirs(folder, exist_ok=True)
    epochs = [e for e in run.epochs if math.isfinite(e)] if run.epochs is not None else []
    path = os.path.join(folder, DIAGNOSIS_EVENTS)
    rundir.write_bytes_atomic(path, text_summary_file({"diagnosis": markdown}, int(epochs[-1]) if epochs else 0))
    return path
