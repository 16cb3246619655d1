"""Metric names → the names the advisor reads (``loss``, ``val_loss``, ``accuracy``, …).

Loggers name the same curve many ways: Keras ``val_loss`` and, in its TensorBoard
layout, ``validation/epoch_loss``; PyTorch and tensorboardX ``loss/train``,
``train/loss``, ``Loss/val``; Lightning ``train_loss_epoch`` / ``train_loss_step``;
Hugging Face ``eval_loss``. One set of rules maps them onto Keras's names, which the
rules read: a split word (train/training, val/valid/validation/eval/evaluation/dev) as a
tag part or a prefix, Keras's ``epoch_`` tag prefix and Lightning's ``_epoch``/``_step``
suffixes dropped, ``lr-Adam`` style names read as ``lr``. Test-split curves are read as
validation when the log has no validation curves (a train/test log); beside validation
curves they, and bookkeeping (steps, runtimes, throughput, gradient norms), are not
curves and are left out. Every rename and omission is written to the run's notes, so
the report says how the log was read; ``--columns role=name`` overrides the rules.
"""

from __future__ import annotations

import re
from typing import Mapping

from kadvisor.errors import InputError

TEXT_COLUMNS = ("stage", "phase")  # text the advisor reads; other text is noted as unused
_TRAIN = {"train", "training"}
_VAL = {"val", "valid", "validation", "eval", "evaluation", "dev"}
_TEST = {"test", "testing"}
_PREFIX = re.compile(r"^(train|training|val|valid|validation|eval|evaluation|dev|test|testing)_(.+)$")
_LR = re.compile(r"^(lr|learning_rate)[-_@].+$")  # Lightning's LearningRateMonitor: lr-Adam
_BOOKKEEPING = re.compile(
    r"^(step|global_step|steps|batch|iteration|iter|samples|epoch_time|hp_metric|total_flos|flos)$"
    r"|runtime|per_second|grad_norm|memory")
# Fragments of the names of losses and metrics: a log must have one of them.
_METRIC = re.compile(
    r"(loss|acc|auc|f1|precision|recall|iou|dice|mae|mse|rmse|mape|error|top_?\d|perplexity|"
    r"crossentropy|hinge|score|r2|bleu|rouge|wer|cer|kl)", re.IGNORECASE)
TEST_SPLIT = "test split: "  # why a test-split column was left out, then its base name
_PRIORITY = {"epoch": 0, None: 1, "step": 2}  # Lightning: an epoch aggregate beats per-step values


def canonical(name: str) -> tuple[str | None, str | None, str]:
    """Maps one logged name.

    Returns:
        (advisor name or None when the column is not a curve, aggregate kind —
        "epoch", "step" or None —, why it was left out when it was).
    """
    low = name.strip().lower()
    parts = [p for p in low.replace("\\", "/").split("/") if p]
    split, rest = None, []
    for part in parts:
        if part in _TRAIN:
            split = split or "train"
        elif part in _VAL:
            split = "val"
        elif part in _TEST:
            split = "test"
        else:
            rest.append(part.replace(" ", "_").replace("-", "_") if len(parts) > 1 else part)
    base = "_".join(rest) if rest else low
    match = _PREFIX.match(base)
    if match and split is None:
        word, base = match.groups()
        split = "train" if word in _TRAIN else "test" if word in _TEST else "val"
    if base.startswith("epoch_") and len(base) > 6:
        base = base[6:]  # Keras's TensorBoard callback: epoch_loss, epoch_accuracy
    aggregate = None
    for suffix in ("epoch", "step"):
        if base.endswith("_" + suffix) and len(base) > len(suffix) + 1:
            base, aggregate = base[: -len(suffix) - 1], suffix
    if _LR.match(base):
        base = "lr"
    if split == "test":
        return None, aggregate, TEST_SPLIT + base
    if _BOOKKEEPING.search(base):
        return None, aggregate, "bookkeeping, not a training curve"
    return ("val_" + base if split == "val" else base), aggregate, ""


def parse_columns_option(text: str | None) -> dict[str, str]:
    """Parses ``--columns loss=train/loss,val_loss=valid/loss`` into {role: logged name}.

    Raises:
        InputError: If an item is not ``ROLE=NAME``.
    """
    if not text:
        return {}
    out: dict[str, str] = {}
    for item in text.split(","):
        role, sep, logged = item.partition("=")
        if not sep or not role.strip() or not logged.strip():
            raise InputError(f"--columns: expected ROLE=NAME items separated by commas "
                             f"(e.g. loss=train/loss,val_loss=valid/loss), got '{item}'")
        if role.strip() in out:
            raise InputError(f"--columns: {role.strip()} is given twice ('{out[role.strip()]}' and "
                             f"'{logged.strip()}'); expected each role once")
        out[role.strip()] = logged.strip()
    return out


def canonical_columns(raw: dict[str, list], notes: list[str],
                      override: Mapping[str, str] | None = None) -> dict[str, list]:
    """Renames logged columns to advisor names (see the module docstring).

    Args:
        raw: Logged name → cells.
        notes: Receives one note on renames and one on what was left out.
        override: Role → logged name, applied first (``--columns``).

    Raises:
        InputError: If an override names a column the log does not have.
    """
    out: dict[str, list] = {}
    chosen: dict[str, tuple[int, str]] = {}
    renamed, left_out = [], []
    taken = set()
    for role, logged in (override or {}).items():
        match = next((k for k in raw if k == logged), None) or next(
            (k for k in raw if k.lower() == logged.lower()), None)
        if match is None:
            shown = ", ".join(list(raw)[:12])
            raise InputError(f"--columns {role}={logged}: no column '{logged}' in the log (columns: {shown})")
        out[role] = raw[match]
        chosen[role] = (-1, match)
        taken.add(match)
        renamed.append(f"{match} as {role} (--columns)")
    test: dict[str, str] = {}  # base name -> logged name of each test-split curve
    for name, cells in raw.items():
        if name in taken:
            continue
        if name.strip().lower() == "epoch" or name == "":
            out.setdefault("epoch", cells)
            continue
        new, aggregate, why = canonical(name)
        if new is None and why.startswith(TEST_SPLIT):
            test.setdefault(why[len(TEST_SPLIT):], name)
            continue
        if new is None:
            left_out.append(f"{name} ({why})")
            continue
        rank = _PRIORITY[aggregate]
        if new in chosen:
            if chosen[new][0] <= rank:
                left_out.append(f"{name} ({chosen[new][1]} is read as {new})")
                continue
            left_out.append(f"{chosen[new][1]} ({name} is read as {new})")
            renamed = [r for r in renamed if not r.startswith(chosen[new][1] + " as ")]
        out[new] = cells
        chosen[new] = (rank, name)
        if new != name:
            renamed.append(f"{name} as {new}")
    # A log with a test curve per epoch and no validation one (train/test, as many
    # PyTorch scripts log it) held the test split out the way a validation split is:
    # its curves are read as validation. Beside validation curves (Lightning's final
    # `trainer.test`), test values are not training curves.
    held_out = not any(k.startswith("val_") for k in out)
    for base, name in test.items():
        if held_out and "val_" + base not in out:
            out["val_" + base] = raw[name]
            renamed.append(f"{name} as val_{base} (no validation curves: the test split is the held-out one)")
        else:
            left_out.append(f"{name} (test-split values beside validation curves are not training curves)")
    lowered = [r for r in renamed if r.split(" as ")[0].lower() == r.split(" as ")[1]]
    if lowered and len(lowered) == len(renamed):
        notes.append("column names read case-insensitively (" + ", ".join(renamed[:6]) + ")")
    elif renamed:
        notes.append("columns read as: " + ", ".join(renamed[:12]) + (" …" if len(renamed) > 12 else ""))
    if left_out:
        notes.append("not used: " + ", ".join(left_out[:8]) + (" …" if len(left_out) > 8 else ""))
    return out


def is_recognisable(name: str) -> bool:
    """Whether ``name`` (an advisor name) looks like a loss or a metric."""
    return ":" not in name and bool(_METRIC.search(name.removeprefix("val_")))


def require_recognisable(numeric: list[str], names: list[str], source: str, values: dict | None = None) -> None:
    """Refuses a table without a loss or metric column, naming what it found.

    Args:
        numeric: Names of the numeric columns.
        names: Every column name (numeric or not).
        source: Name used in messages.
        values: Name → sample values, to show why a recognisable column was refused.

    Raises:
        InputError: One line: the columns found and what was expected.
    """
    if any(is_recognisable(n) for n in numeric):
        return
    shown = ", ".join(repr(n) for n in names[:6]) + (", …" if len(names) > 6 else "")
    raise InputError(f"{source}: not a training log: found {'columns ' + shown if names else 'no columns'}; "
                     f"expected a loss or metric column (e.g. loss, val_loss, accuracy)")
