"""`RunFeatures`: the curves of one run, oriented and measured once for all rules.

Rules never parse column names themselves: they read ``loss``/``val_loss`` and the main
metric in *error form* — a lower-is-better, non-negative curve (``1 - accuracy`` for a
[0, 1] metric where higher is better, the negated value for other higher-is-better
metrics, the value itself for losses and errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.inputs import Run


def is_unit_metric(name: str, *columns: np.ndarray | None) -> bool:
    """Whether ``name`` is higher-is-better with every value in [0, 1] (accuracy, dice)."""
    values = np.concatenate([C.finite(c) for c in columns if c is not None] or [np.zeros(0)])
    return bool(C.higher_is_better(name) and values.size and values.min() >= 0 and values.max() <= 1)


def error_form(values: np.ndarray, name: str, unit: bool) -> np.ndarray:
    """Orients a metric so that lower is better (``1 - x`` for a [0, 1] metric where
    higher is better, ``-x`` for other higher-is-better metrics)."""
    x = np.asarray(values, dtype=float)
    if not C.higher_is_better(name):
        return x
    return 1.0 - x if unit else -x


@dataclass
class RunFeatures:
    """Curves of a run plus cached measurements.

    Attributes:
        run: The run read from disk or memory.
        loss: Training loss, or None.
        val_loss: Validation loss, or None.
        metric: Name of the main training metric, or None.
        train_err: That metric in error form, or None.
        val_err: Its validation twin in error form, or None.
        lr: Learning rate per epoch, or None.
        stage: Stage name per epoch, or None.
    """

    run: Run
    loss: np.ndarray | None = None
    val_loss: np.ndarray | None = None
    metric: str | None = None
    train_err: np.ndarray | None = None
    val_err: np.ndarray | None = None
    lr: np.ndarray | None = None
    stage: list[str] | None = None
    bounded: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_run(cls, run: Run) -> "RunFeatures":
        """Picks the columns the rules read out of ``run``."""
        cols = run.columns
        f = cls(run=run)
        f.loss = cols.get("loss")
        f.val_loss = cols.get("val_loss")
        if f.loss is None:  # multi-output logs without a total: first *_loss column
            losses = [c for c in cols if c.endswith("loss") and not c.startswith("val_")]
            if losses:
                f.loss = cols[losses[0]]
                f.val_loss = cols.get("val_" + losses[0])
        f.metric = C.pick_metric(cols)
        if f.metric is not None:
            val = cols.get("val_" + f.metric)
            f.bounded = is_unit_metric(f.metric, cols[f.metric], val)
            f.train_err = error_form(cols[f.metric], f.metric, f.bounded)
            if val is not None:
                f.val_err = error_form(val, f.metric, f.bounded)
        for name in C.LR_COLUMNS:
            if name in cols:
                f.lr = cols[name]
                break
        if "stage" in run.text:
            f.stage = run.text["stage"]
        elif "stage" in cols:
            f.stage = [str(int(v)) if np.isfinite(v) else "" for v in cols["stage"]]
        return f

    def last_stage(self, minimum: int = 3) -> "RunFeatures | None":
        """The features of the last training stage alone, when the log has several
        stages (a ``stage`` column) and the last one has at least ``minimum`` epochs.

        A fine-tuning stage starts from where the head-only stage ended, with a jump in
        the curves; "what next" is read from the stage that ran last.
        """
        if not self.stage or len({s for s in self.stage if s}) < 2:
            return None
        last = self.stage[-1]
        start = len(self.stage)
        while start > 0 and self.stage[start - 1] == last:
            start -= 1
        rows = list(range(start, len(self.stage)))
        return RunFeatures.from_run(self.run.select(rows)) if len(rows) >= minimum else None

    @property
    def n(self) -> int:
        """Number of epochs."""
        return self.run.length

    @property
    def has_validation(self) -> bool:
        """Whether any validation curve has a finite value."""
        return any(v is not None and np.isfinite(v).any() for v in (self.val_loss, self.val_err))

    def epoch_label(self, index: int) -> int:
        """The epoch number as logged for a 0-based index (Keras logs count from 0)."""
        epochs = self.run.epochs
        if epochs is not None and 0 <= index < len(epochs) and np.isfinite(epochs[index]):
            return int(epochs[index])
        return int(index)

    def panel_span(self, name: str) -> float:
        """The height of the plot a reader judges a validation curve on.

        Training and validation curves of one quantity share a figure (the loss panel,
        the metric panel), so a wiggle is "large" against what that panel shows: the
        `curves.visible_range` of both curves together, not of the validation curve
        alone (on which a flat, slightly wobbly curve looks like pure noise).
        """
        pair = (self.loss, self.val_loss) if name == "val_loss" else (self.train_err, self.val_err)
        values = np.concatenate([C.finite(v) for v in pair if v is not None] or [np.zeros(0)])
        # Floored at a tenth of the curve's size: a reader reads the axis too, and a
        # fall of 0.500 → 0.495 is not "clearly improving" however the plot is scaled.
        size = 0.1 * float(np.median(np.abs(values))) if values.size else 0.0
        return max(C.visible_range(values), size)

    def val_curves(self) -> list[tuple[str, np.ndarray]]:
        """The validation curves in lower-is-better form, loss first."""
        out = []
        if self.val_loss is not None and np.isfinite(self.val_loss).sum() >= 2:
            out.append(("val_loss", self.val_loss))
        if self.val_err is not None and np.isfinite(self.val_err).sum() >= 2:
            out.append((f"val_{self.metric}", self.val_err))
        return out

    @cached_property
    def loss_trend(self) -> np.ndarray | None:
        """Trend of the training loss."""
        return None if self.loss is None else C.trend(self.loss)

    @cached_property
    def val_loss_trend(self) -> np.ndarray | None:
        """Trend of the validation loss."""
        return None if self.val_loss is None else C.trend(self.val_loss)

    def progress_epoch(self, values: np.ndarray, tolerance: float) -> int:
        """Last epoch index where the trend of ``values`` made real progress.

        A new best counts only if it beats the previous counted best by more than
        ``tolerance`` × the curve's `curves.level`, so a flat tail creeping down by
        noise does not count as improving.
        """
        t = C.trend(values)
        if t.size == 0:
            return 0
        step = tolerance * C.level(values)
        best, at = t[0], 0
        for i in range(1, t.size):
            if t[i] < best - step:
                best, at = t[i], i
        return at

    @staticmethod
    def best_index(values: np.ndarray) -> int:
        """First epoch index at the best (lowest) finite value of a curve, -1 if none."""
        x = np.asarray(values, dtype=float)
        ok = np.isfinite(x)
        if not ok.any():
            return -1
        return int(np.flatnonzero(ok & (x <= np.min(x[ok])))[0])

    def tail_epochs(self, th: dict) -> int:
        """Epochs read as "the end of the run": ``improve_tail`` of it, at least 3."""
        return max(3, int(np.ceil(th["improve_tail"] * self.n)))

    def val_improvement(self, th: dict) -> dict[str, tuple[float, float]]:
        """How much each validation curve improved at the end of the run.

        Compares the median of the last `tail_epochs` with the median of as many epochs
        before them (`curves.window_change`).

        Returns:
            Curve name → (improvement as a fraction of its `panel_span` — what a reader
            of the plot sees —, improvement in units of its zig-zag over those epochs). Negative values mean
            the curve got worse.
        """
        k = self.tail_epochs(th)
        out = {}
        for name, v in self.val_curves():
            x = C.fill_gaps(v)
            change = C.window_change(x, k)
            if not np.isfinite(change):
                continue
            span = self.panel_span(name)
            noise = C.zigzag_rms(x[-2 * k - 1 :])
            out[name] = (change / max(span, 1e-12), change / noise if noise > 0 else float(np.sign(change)) * 1e6)
        return out

    def improving_curve(self, th: dict) -> tuple[str, float] | None:
        """The validation curve that is clearly still improving at the end, if any.

        "Clearly": by at least ``improve_min`` of its panel's height and by more than its own
        epoch-to-epoch zig-zag. Returns (name, relative improvement) or None.
        """
        k = self.tail_epochs(th)
        curves = dict(self.val_curves())
        found = [(name, rel) for name, (rel, snr) in self.val_improvement(th).items()
                 if rel >= th["improve_min"] and snr >= 1.0
                 and self.best_index(curves[name]) >= self.n - k]
        return max(found, key=lambda x: x[1]) if found else None

