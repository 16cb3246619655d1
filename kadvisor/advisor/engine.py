"""The rule engine: curves → features → rules → ranked, reconciled findings.

`diagnose` never raises on odd curves (empty, one epoch, NaN, inf, constant, huge):
a rule that fails on something unforeseen is reported as undecided rather than
crashing the diagnosis, because advice about a broken run is most needed exactly then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from kadvisor.advisor.actions import reconcile
from kadvisor.advisor.causes import explain
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Finding, json_safe, undecided
from kadvisor.advisor.inputs import Run, from_mapping, read_target
from kadvisor.advisor.rules import RULES
from kadvisor.recipe.advisor_section import advisor_defaults

SCHEMA_VERSION = 1


@dataclass
class Diagnosis:
    """The result of `diagnose`.

    Attributes:
        findings: Problems found, most important first (severity, then confidence).
        undecided: Rules that could not judge this run, with the reason.
        features: Headline numbers of the run (epochs, best epoch, last values).
        dropped: Actions removed because they contradicted a higher-ranked finding.
        source: What was diagnosed.
        run: The run itself (not serialised).
        notes: Observations with nothing worth changing (shown, not ranked).
        judged: Whether any curve rule could judge the run. A run on which every
            one said "cannot judge" (one or two epochs, no usable curve) is not
            healthy but too little to judge.
    """

    findings: list[Finding]
    undecided: list[Finding] = field(default_factory=list)
    features: dict[str, Any] = field(default_factory=dict)
    dropped: list[dict] = field(default_factory=list)
    source: str = "<memory>"
    run: Run | None = None
    notes: list[Finding] = field(default_factory=list)
    judged: bool = True

    @property
    def healthy(self) -> bool:
        """No problem found on a run the rules could judge."""
        return self.judged and not self.findings

    @property
    def verdict(self) -> str:
        """``"problems"``, ``"healthy"`` or ``"too little to judge"``."""
        return "problems" if self.findings else "healthy" if self.judged else "too little to judge"

    @property
    def labels(self) -> list[str]:
        """Problem ids found, ``["healthy"]`` when there are none, ``[]`` when the run
        was too little to judge."""
        return [f.rule for f in self.findings] or (["healthy"] if self.judged else [])

    def to_dict(self) -> dict:
        """The stable JSON schema (see docs/reading-the-advice.md)."""
        return json_safe({
            "schema": SCHEMA_VERSION,
            "source": self.source,
            "healthy": self.healthy,
            "verdict": self.verdict,
            "summary": self.features,
            "findings": [f.to_dict() for f in self.findings],
            "undecided": [{"rule": f.rule, "reason": f.summary} for f in self.undecided],
            "notes": [{"rule": f.rule, "summary": f.summary} for f in self.notes],
            "dropped_actions": self.dropped,
        })

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict` as JSON text (NaN/inf are written as null)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def thresholds_for(recipe: dict | None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Advisor thresholds: defaults, then the recipe's ``[advisor]``, then ``overrides``."""
    th = advisor_defaults()
    if recipe and isinstance(recipe.get("advisor"), dict):
        th.update({k: v for k, v in recipe["advisor"].items() if k in th})
    if overrides:
        th.update(overrides)
    return th


def _headline(f: RunFeatures) -> dict:
    out: dict[str, Any] = {"epochs": f.n, "metric": f.metric}
    for name in ("loss", "val_loss"):
        v = getattr(f, name)
        if v is not None and np.isfinite(v).any():
            i = int(np.nanargmin(np.where(np.isfinite(v), v, np.nan)))
            out[f"{name}_best"] = float(v[i])
            out[f"{name}_best_epoch"] = f.epoch_label(i)
            out[f"{name}_last"] = float(v[-1])
    if f.metric is not None:
        for name in (f.metric, "val_" + f.metric):
            v = f.run.columns.get(name)
            if v is not None and np.isfinite(v).any():
                out[f"{name}_last"] = float(v[np.isfinite(v)][-1])
    return out


def evaluate(
    features: RunFeatures, thresholds: dict, names: Iterable[str] | None = None,
    curve_features: RunFeatures | None = None,
) -> tuple[list[Finding], list[Finding]]:
    """Runs rules on features; returns (problems sorted, undecided).

    ``curve_features`` (e.g. the last training stage) replaces ``features`` for the
    rules that read curves; recipe/data rules always see the whole run.
    """
    found, unsure = [], []
    for name in names if names is not None else RULES:
        rule = RULES[name]
        view = curve_features if curve_features is not None and rule.curve else features
        try:
            with np.errstate(all="ignore"):  # NaN/inf curves are expected input here
                result = rule.fn(view, thresholds)
        except (ValueError, ArithmeticError, IndexError, TypeError, KeyError) as exc:
            result = undecided(name, f"rule failed on this input ({type(exc).__name__}: {exc})")
        if result is None:
            continue
        (found if result.is_problem else unsure).append(result)
    found.sort(key=Finding.sort_key)
    return found, unsure


def diagnose(
    target_or_curves: str | Run | Mapping[str, Any],
    recipe: dict | None = None,
    data: dict | None = None,
    thresholds: Mapping[str, Any] | None = None,
    rules: Iterable[str] | None = None,
) -> Diagnosis:
    """Diagnoses a training run.

    Args:
        target_or_curves: A run directory or log file path, a `Run`, or a Keras
            ``History.history``-like mapping of metric name to per-epoch values.
        recipe: The run's recipe as a plain dict (overrides the run directory's).
        data: The run's ``data.json`` facts (overrides the run directory's).
        thresholds: Advisor thresholds overriding the recipe's ``[advisor]`` values.
        rules: Only these rule names (default: all registered rules).

    Returns:
        The `Diagnosis`.

    Raises:
        InputError: If a path cannot be read as a training log.
    """
    if isinstance(target_or_curves, Run):
        run = target_or_curves
    elif isinstance(target_or_curves, Mapping):
        run = from_mapping(target_or_curves)
    else:
        run = read_target(str(target_or_curves))
    if recipe is not None:
        run.recipe = recipe
    if data is not None:
        run.data = data
    th = thresholds_for(run.recipe, thresholds)
    features = RunFeatures.from_run(run)
    stage = features.last_stage()
    found, unsure = evaluate(features, th, rules, stage)
    explained = explain(found, features, th, [u for u in unsure if u.status == "found"])
    found = [x for x in explained if x.is_problem]
    dropped = reconcile(found, run.recipe)
    headline = _headline(features)
    if stage is not None:
        headline["judged_stage"] = stage.stage[-1]
        headline["judged_epochs"] = [stage.epoch_label(0), stage.epoch_label(stage.n - 1)]
    # "info" findings are observations with nothing worth changing: shown, not ranked.
    notes = [u for u in unsure if u.status == "found" and u not in found]
    notes += [x for x in explained if not x.is_problem]
    undecided = [u for u in unsure if u.status != "found"]
    curve_rules = [n for n in (rules if rules is not None else RULES) if RULES[n].curve]
    judged = bool(found) or any(n not in {u.rule for u in undecided} for n in curve_rules)
    return Diagnosis(found, undecided, headline, dropped, run.source, run, notes, judged)
