"""`Run`: one training run as the advisor sees it, and how columns of raw cells become one.

Every reader ends in `build`: raw per-epoch cells (strings, numbers, None) → float
arrays (NaN where a value is missing), text columns kept aside, and the notes that tell
the user how the log was read (renamed columns, dropped text, restarts, reductions).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from kadvisor.advisor.curves import higher_is_better
from kadvisor.advisor.readers.roles import TEXT_COLUMNS, canonical_columns, is_recognisable, require_recognisable
from kadvisor.errors import InputError


def get_path(tree: dict | None, path: str, default: Any = None) -> Any:
    """Reads a dotted path from a nested dict (the recipe), ``default`` if absent."""
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


@dataclass
class Run:
    """One training run as the advisor sees it.

    Attributes:
        columns: Column name → float array, one value per epoch (NaN when missing).
        text: Column name → list of strings for non-numeric columns (e.g. ``stage``).
        epochs: Epoch numbers as logged (0-based in Keras logs).
        source: Where the run came from, for messages.
        run_dir: The run directory, when the target was one.
        recipe: The resolved recipe as a plain dict, when known.
        recipe_path: The recipe file the dict came from, when known.
        data: The ``data.json`` facts, when known.
        metrics: The ``metrics.json`` content, when known.
        nonfinite: Column name → first epoch index logged as NaN/inf (explicit values,
            not missing cells).
        notes: How the log was read, one sentence each (shown with the report).
        format: The name of the reader that read it.
    """

    columns: dict[str, np.ndarray]
    text: dict[str, list[str]] = field(default_factory=dict)
    epochs: np.ndarray | None = None
    source: str = "<memory>"
    run_dir: str | None = None
    recipe: dict | None = None
    recipe_path: str | None = None
    data: dict | None = None
    metrics: dict | None = None
    nonfinite: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    format: str | None = None

    def __post_init__(self) -> None:
        if self.epochs is None:
            self.epochs = np.arange(self.length, dtype=float)

    @property
    def length(self) -> int:
        """Number of epochs logged."""
        lengths = [len(v) for v in self.columns.values()] + [len(v) for v in self.text.values()]
        return max(lengths, default=0)

    def select(self, rows: list[int]) -> "Run":
        """The same run restricted to some epochs (e.g. one training stage)."""
        idx = np.asarray(rows, dtype=int)
        return Run(
            columns={k: v[idx] for k, v in self.columns.items()},
            text={k: [v[i] for i in rows] for k, v in self.text.items()},
            epochs=np.asarray(self.epochs)[idx], source=self.source, run_dir=self.run_dir,
            recipe=self.recipe, recipe_path=self.recipe_path, data=self.data, metrics=self.metrics,
            nonfinite={k: rows.index(i) for k, i in self.nonfinite.items() if i in rows},
            notes=list(self.notes), format=self.format,
        )


def from_mapping(history: Mapping[str, Any], source: str = "<memory>") -> Run:
    """Builds a `Run` from a Keras ``History.history``-like mapping of lists.

    Args:
        history: Column name → sequence of per-epoch values. ``None`` and strings that
            are not numbers become NaN, except for columns where no value is numeric,
            which are kept as text (e.g. ``stage``).
        source: Name used in messages.

    Returns:
        The run; columns shorter than the longest are padded with NaN.

    Raises:
        InputError: If ``history`` is not a mapping of sequences, or has no loss or
            metric column.
    """
    if not isinstance(history, Mapping):
        raise InputError(f"{source}: expected a mapping of metric name to values, got {type(history).__name__}")
    raw: dict[str, list] = {}
    for name, values in history.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            values = [values]
        raw[str(name)] = list(values)
    return build(raw, source)


def build(raw: dict[str, list], source: str, notes: list[str] | None = None,
          columns_override: Mapping[str, str] | None = None, epochs: Any = None) -> Run:
    """Turns raw per-epoch cells into a `Run`.

    Args:
        raw: Column name as logged → cells (one per epoch).
        source: Name used in messages.
        notes: Reading notes gathered so far (extended here).
        columns_override: Role → logged name (``--columns``), applied before the
            automatic mapping.
        epochs: Epoch labels to use when ``raw`` has no ``epoch`` column.

    Raises:
        InputError: If no column is a recognisable loss or metric.
    """
    notes = list(notes or [])
    raw = canonical_columns(raw, notes, columns_override)
    length = max((len(v) for v in raw.values()), default=0)
    columns: dict[str, np.ndarray] = {}
    text: dict[str, list[str]] = {}
    nonfinite: dict[str, int] = {}
    epoch_array = None
    vectors = []
    for name, values in raw.items():
        numbers = [to_float(v) for v in values]
        if any(isinstance(v, str) and "," in v and v.strip(" \"'").startswith("[") for v in values):
            vectors.append(name)
        bad = [i for i, x in enumerate(numbers) if x is not None and not math.isfinite(x)]
        if bad:
            nonfinite[name] = bad[0]
        numeric = [x for x in numbers if x is not None]
        words = [v for v in values if isinstance(v, str) and v.strip()]
        if words and not numeric and name != "epoch":
            text[name] = [str(v) for v in values] + [""] * (length - len(values))
            continue
        array = np.full(length, np.nan)
        array[: len(numbers)] = [np.nan if x is None else x for x in numbers]
        if name == "epoch":
            epoch_array = array
        else:
            columns[name] = array
    if vectors:
        notes.append(f"vector cells in {', '.join(vectors)}: each epoch's value is the mean of its entries")
    unused = [t for t in text if t not in TEXT_COLUMNS]
    if unused:
        notes.append(f"text column{'s' if len(unused) > 1 else ''} {', '.join(unused)} not used (not numbers)")
    _require_values(columns, text, nonfinite, list(raw), source)
    in_percent = fractions_from_percent(columns)
    if in_percent:
        notes.append(f"{', '.join(in_percent)} logged in percent: read as fractions (÷100), as Keras logs them")
    if epoch_array is not None and np.isnan(epoch_array).any():
        notes.append("the epoch column has missing or non-numeric cells: epochs are numbered by row")
        epoch_array = None  # a broken epoch column is worse than none
    if epoch_array is None and epochs is not None:
        epoch_array = np.asarray(epochs, dtype=float)
    return Run(columns=columns, text=text, epochs=epoch_array, source=source, nonfinite=nonfinite, notes=notes)


# Metrics that are shares of something (of examples, of pixels, of the ROC square):
# Keras logs them in [0, 1], PyTorch and Lightning users often in percent.
_SHARE_METRIC = re.compile(r"(acc|precision|recall|f1|iou|io_u|dice|auc)", re.IGNORECASE)


def fractions_from_percent(columns: dict[str, np.ndarray]) -> list[str]:
    """Divides by 100, in place, each share metric logged in percent; returns their names.

    A metric and its validation twin are judged together: in percent when every value
    of both is in [0, 100] and some are above 1, which a fraction cannot be.
    """
    changed = []
    for name in sorted({n.removeprefix("val_") for n in columns if _SHARE_METRIC.search(n)}):
        pair = [n for n in (name, "val_" + name) if n in columns]
        values = np.concatenate([columns[n][np.isfinite(columns[n])] for n in pair])
        if values.size and values.min() >= 0 and 1 < values.max() <= 100 and higher_is_better(name):
            for n in pair:
                columns[n] = columns[n] / 100.0
            changed += pair
    return changed


def _require_values(columns, text, nonfinite, names, source) -> None:
    """Refuses a log whose loss/metric columns hold no numbers, naming the column."""
    usable = [n for n, v in columns.items() if is_recognisable(n) and (np.isfinite(v).any() or n in nonfinite)]
    if usable:
        return
    for name, cells in text.items():
        if is_recognisable(name):
            sample = next(c for c in cells if c.strip())
            raise InputError(f"{source}: column '{name}' holds text, not numbers (got '{sample[:40]}'); "
                             f"expected one number per epoch")
    for name in columns:
        if is_recognisable(name):
            raise InputError(f"{source}: column '{name}' has no values (all empty or null); "
                             f"expected one number per epoch")
    require_recognisable([], names, source)


def to_float(value: Any) -> float | None:
    """Parses one cell: numbers, 'nan', 'inf', '-inf', vectors (their mean); None otherwise."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if value is None:
        return None
    try:
        text = str(value).strip().strip('"').strip("'").strip()
        if text.startswith("[") and text.endswith("]"):  # "[0.5]" or "[0.1, 0.2]" (CSVLogger vectors)
            parts = [p for p in text[1:-1].replace(",", " ").split() if p]
            if not parts:
                return None
            return float(np.mean([float(p) for p in parts]))
        return float(text)
    except (TypeError, ValueError):
        return None


def finite_or_none(value: float) -> float | None:
    """JSON-safe float: None for NaN/inf."""
    return float(value) if value is not None and math.isfinite(value) else None
