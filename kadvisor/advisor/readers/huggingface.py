"""Hugging Face ``Trainer`` state: ``trainer_state.json`` (in ``output_dir/checkpoint-N/``).

``log_history`` interleaves training entries (``loss``, ``learning_rate``,
``grad_norm`` every ``logging_steps``) with evaluation entries (``eval_loss``,
``eval_<metric>``, runtimes) every ``eval_steps`` or epoch, and ends with a summary
(``train_runtime``, the run's mean ``train_loss``), which is not a curve. The points
are the evaluations; training values are averaged over the steps since the previous
one.
"""

from __future__ import annotations

import os

import numpy as np

from kadvisor.advisor.readers.align import align
from kadvisor.advisor.readers.history_json import load_json
from kadvisor.advisor.readers.roles import canonical_columns
from kadvisor.advisor.readers.run import Run, build, to_float
from kadvisor.advisor.readers.safeio import read_text
from kadvisor.errors import InputError

STATE_FILE = "trainer_state.json"


def _file(path: str) -> str:
    return os.path.join(path, STATE_FILE) if os.path.isdir(path) else path


def detect(path: str, head: str) -> bool:
    """A ``trainer_state.json`` (or a checkpoint directory holding one)."""
    if os.path.isdir(path):
        return os.path.isfile(_file(path))
    return head.lstrip().startswith("{") and '"log_history"' in head


def read(path: str, columns: dict | None = None) -> Run:
    """Reads ``log_history``: one point per evaluation (see the module docstring).

    Raises:
        InputError: No ``log_history`` list, or no loss/metric in it.
    """
    source = _file(path)
    state = load_json(read_text(source), source)
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise InputError(f"{source}: expected a Trainer state with a 'log_history' list of objects")
    notes: list[str] = []
    series: dict[str, list] = {}
    epoch_at: dict[float, float] = {}
    summaries, dropped = 0, set()
    for i, entry in enumerate(history):
        if "train_runtime" in entry:  # the end-of-training summary, not a point of a curve
            summaries += 1
            continue
        step = to_float(entry.get("step"))
        step = float(i) if step is None else step
        if "epoch" in entry and to_float(entry["epoch"]) is not None:
            epoch_at[step] = to_float(entry["epoch"])
        for name, value in entry.items():
            number = to_float(value)
            if name not in ("step", "epoch") and number is not None:
                series.setdefault(name, []).append((step, number))
            elif name not in ("step", "epoch") and value is not None and not isinstance(value, (int, float)):
                dropped.add(name)
    if dropped:
        notes.append(f"values that are not numbers were left out ({', '.join(sorted(dropped))})")
    if summaries:
        notes.append("the end-of-training summary (train_runtime, mean train_loss) is not a curve: not used")
    mapped = canonical_columns(series, notes, columns)
    mapped.pop("epoch", None)
    steps, values, align_notes = align(mapped, "step")
    if len(steps):
        epochs = [epoch_at.get(s) for s in steps]
        shown = ", ".join(f"{e:g}" for e in epochs[:8] if e is not None)
        at = f"; epochs {shown}{', …' if len(steps) > 8 else ''}" if shown else ""
        notes.append(f"points are the {len(steps)} evaluations (steps {steps[0]:g}…{steps[-1]:g}{at}), "
                     f"numbered 0–{len(steps) - 1}")
    run = build(values, source, notes + align_notes, epochs=np.arange(len(steps), dtype=float))
    run.format = "huggingface"
    return run
