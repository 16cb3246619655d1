"""`AdvisorCallback`: live advice at each epoch end during ``kadvisor fit``.

This is the only advisor module that imports Keras; `kadvisor.advisor` exposes it lazily.
"""

from __future__ import annotations

from typing import Callable, Iterable

import keras

from kadvisor.advisor.engine import evaluate, thresholds_for
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.inputs import from_mapping
from kadvisor.advisor.rules import RULES


class AdvisorCallback(keras.callbacks.Callback):
    """Evaluates the cheap rules (diverged, unstable, overfitting) on the logs so far.

    Prints a warning the first time each finding fires and stops training when a
    finding named in ``stop_on`` fires. Until ``advisor.min_epochs`` epochs have run,
    only `diverged` is checked: NaN is final at once, but the first epochs' shape
    (warm-up, BatchNorm statistics settling) says nothing about overfitting yet.

    Args:
        thresholds: ``[advisor]`` values (defaults when None).
        stop_on: Finding ids that set ``model.stop_training = True``.
        printer: Receives each warning line (default `print`).
        rules: Rule names to evaluate (default: every rule registered as cheap).
    """

    def __init__(
        self,
        thresholds: dict | None = None,
        stop_on: Iterable[str] = (),
        printer: Callable[[str], None] = print,
        rules: Iterable[str] | None = None,
    ):
        super().__init__()
        self.thresholds = thresholds_for(None, thresholds)
        self.stop_on = set(stop_on)
        self.printer = printer
        self.rules = list(rules) if rules is not None else [n for n, r in RULES.items() if r.cheap]
        self.history: dict[str, list[float]] = {}
        self.fired: dict[str, int] = {}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            try:
                self.history.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue
        if not self.history:
            return
        early = epoch + 1 < self.thresholds["min_epochs"]
        rules = [r for r in self.rules if r == "diverged"] if early else self.rules
        features = RunFeatures.from_run(from_mapping(self.history, "live"))
        found, _ = evaluate(features, self.thresholds, rules)
        for finding in found:
            if finding.rule in self.fired:
                continue
            self.fired[finding.rule] = epoch
            self.printer(f"advisor: {finding.rule} at epoch {epoch}: {finding.summary}")
            if finding.rule in self.stop_on and self.model is not None:
                self.printer(f"advisor: stopping training ({finding.rule} is in advisor.stop_on)")
                self.model.stop_training = True
