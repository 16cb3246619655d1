"""Diagnosing a K-fold parent directory: every fold, then what most folds agree on.

A K-fold parent (written by ``kadvisor fit --kfold K``) holds ``kfold.json``
(``{"folds": K, "runs": ["fold-1", ...], "summary": {metric: {"mean", "std"}}}``), the
shared ``recipe.toml`` and one normal run directory per fold. One fold's curves can
mislead (a lucky or unlucky validation split); a finding that fires in most folds is
a property of the recipe. `diagnose_kfold` diagnoses each fold and keeps, as the
consensus, the findings of at least ``majority`` of the folds, with their counts; the
actions of the consensus are those of the fold where the finding was most confident,
reconciled again across findings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from kadvisor import rundir
from kadvisor.advisor.actions import reconcile
from kadvisor.advisor.engine import SCHEMA_VERSION, Diagnosis, diagnose
from kadvisor.advisor.findings import Finding, json_safe
from kadvisor.advisor.inputs import read_recipe_dict, read_run_dir
from kadvisor.errors import InputError


def is_kfold_parent(path: str) -> bool:
    """Whether ``path`` is a directory holding ``kfold.json``."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, rundir.KFOLD))


@dataclass
class Consensus:
    """One finding across folds.

    Attributes:
        finding: The most confident instance (its actions reconciled across findings).
        folds: Names of the folds where it fired.
    """

    finding: Finding
    folds: list[str]


@dataclass
class KFoldDiagnosis:
    """The diagnosis of a K-fold parent.

    Attributes:
        source: The parent directory.
        folds: Fold name → its `Diagnosis`.
        consensus: Findings of at least ``majority`` folds, most frequent first.
        summary: ``kfold.json``'s metric summary.
        majority: How many folds a consensus finding needs.
        recipe: The parent's recipe as a dict, when present.
        recipe_path: Its path.
    """

    source: str
    folds: dict[str, Diagnosis]
    consensus: list[Consensus] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    majority: int = 1
    recipe: dict | None = None
    recipe_path: str | None = None

    @property
    def findings(self) -> list[Finding]:
        """The consensus findings (what ``--apply`` chooses from)."""
        return [c.finding for c in self.consensus]

    def to_dict(self) -> dict:
        """JSON form: the consensus with fold counts, then every fold's diagnosis."""
        return json_safe({
            "schema": SCHEMA_VERSION,
            "source": self.source,
            "kfold": {"folds": len(self.folds), "majority": self.majority, "summary": self.summary},
            "healthy": not self.consensus,
            "consensus": [
                {**c.finding.to_dict(), "count": len(c.folds), "folds": c.folds} for c in self.consensus
            ],
            "folds": {name: d.to_dict() for name, d in self.folds.items()},
        })

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _read_index(path: str) -> dict:
    index_path = os.path.join(path, rundir.KFOLD)
    try:
        with open(index_path, encoding="utf-8") as fh:
            index = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"{index_path}: unreadable ({exc}); expected a kfold.json with a 'runs' list") from None
    runs = index.get("runs") if isinstance(index, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise InputError(f"{index_path}: expected a 'runs' list of fold directory names, got {runs!r}")
    return index


def diagnose_kfold(path: str, thresholds: dict | None = None) -> KFoldDiagnosis:
    """Diagnoses every fold of the K-fold parent ``path`` and their consensus.

    Args:
        path: The parent directory (with ``kfold.json``).
        thresholds: Advisor thresholds overriding the recipes' ``[advisor]``.

    Returns:
        The `KFoldDiagnosis`; folds listed in ``kfold.json`` but missing on disk (an
        interrupted cross-validation) are skipped.

    Raises:
        InputError: If ``kfold.json`` is unreadable or no fold can be read.
    """
    index = _read_index(path)
    folds: dict[str, Diagnosis] = {}
    for name in index["runs"]:
        fold_dir = _inside(path, name)
        if os.path.isdir(fold_dir):
            folds[name] = diagnose(read_run_dir(fold_dir), thresholds=thresholds)
    if not folds:
        raise InputError(f"{path}: none of the fold directories in {rundir.KFOLD} exists ({', '.join(index['runs'][:3])}...)")
    recipe_path = os.path.join(path, "recipe.toml")
    recipe = read_recipe_dict(recipe_path) if os.path.isfile(recipe_path) else None
    majority = len(folds) // 2 + 1
    fired: dict[str, list[tuple[str, Finding]]] = {}
    for name, d in folds.items():
        for finding in d.findings:
            fired.setdefault(finding.rule, []).append((name, finding))
    consensus = []
    for rule, hits in fired.items():
        if len(hits) >= majority:
            best = max((f for _, f in hits), key=lambda f: f.confidence)
            consensus.append(Consensus(_copy(best), [n for n, _ in hits]))
    consensus.sort(key=lambda c: (-len(c.folds), c.finding.sort_key()))
    reconcile([c.finding for c in consensus], recipe)
    summary = index.get("summary") if isinstance(index.get("summary"), dict) else {}
    return KFoldDiagnosis(path, folds, consensus, summary, majority, recipe,
                          recipe_path if recipe is not None else None)


def _inside(parent: str, name: str) -> str:
    """``parent/name``, refusing a name that leads outside ``parent``.

    ``kfold.json`` is data from disk: an absolute path, ``..`` or a link out of the
    parent would make `diagnose` read — and write ``diagnosis.json`` into — another
    directory.

    Raises:
        InputError: The entry is absolute, climbs out, or resolves outside the parent.
    """
    where = os.path.join(parent, rundir.KFOLD)
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/") or not name.strip():
        raise InputError(f"{where}: run entry '{name}' is not a fold directory name inside {parent} "
                         f"(absolute paths and '..' are refused)")
    fold = os.path.join(parent, name)
    real_parent = os.path.realpath(parent)
    if os.path.commonpath([real_parent, os.path.realpath(fold)]) != real_parent:
        raise InputError(f"{where}: run entry '{name}' resolves outside {parent} (a symbolic link?); refused")
    return fold


def _copy(finding: Finding) -> Finding:
    """A copy whose actions can be re-reconciled without touching the fold's."""
    return Finding(finding.rule, finding.severity, finding.confidence, finding.summary,
                   dict(finding.evidence), list(finding.actions), finding.status, finding.epoch)


def to_text(d: KFoldDiagnosis, colour: bool = False) -> str:
    """Text report: the metric summary, the consensus with counts, one line per fold."""
    from kadvisor.advisor.report import describe_action, numbered_actions, severity_tag

    k = len(d.folds)
    lines = [f"{d.source}: {k} folds"]
    for metric, s in d.summary.items():
        if isinstance(s, dict) and isinstance(s.get("mean"), (int, float)):
            lines.append(f"  {metric} {s['mean']:.4g} ± {s.get('std') or 0:.2g}")
    if not d.consensus:
        lines.append(f"healthy in most folds: no finding fired in {d.majority} or more of {k} folds.")
    index = {id(a): i + 1 for i, (_, a) in enumerate(numbered_actions(d))}
    for c in d.consensus:
        f = c.finding
        lines.append(f"{severity_tag(f.severity, colour)} {f.rule} in {len(c.folds)}/{k} folds "
                     f"({', '.join(c.folds)}): {f.summary}")
        for a in [a for a in f.actions if a.patch][:2]:
            lines.append(f"    [{index[id(a)]}] {describe_action(a)} — {a.why}")
    for name, fold in d.folds.items():
        lines.append(f"  {name}: {', '.join(fold.labels)}")
    return "\n".join(lines)


def to_markdown(d: KFoldDiagnosis) -> str:
    """Markdown report: consensus table with counts, then the labels of each fold."""
    k = len(d.folds)
    lines = [f"## K-fold diagnosis of `{d.source}` ({k} folds)", ""]
    if d.consensus:
        lines += ["| finding | folds | summary (most confident fold) |", "|---|---|---|"]
        lines += [f"| `{c.finding.rule}` | {len(c.folds)}/{k} | {c.finding.summary} |" for c in d.consensus]
    else:
        lines.append(f"**healthy** in most folds (no finding in {d.majority} or more of {k}).")
    lines += ["", "| fold | findings |", "|---|---|"]
    lines += [f"| {name} | {', '.join(fold.labels)} |" for name, fold in d.folds.items()]
    return "\n".join(lines) + "\n"


def render(d: KFoldDiagnosis, fmt: str, colour: bool = False) -> str:
    """Renders in ``fmt`` ("text", "json" or "markdown")."""
    if fmt == "json":
        return d.to_json()
    if fmt == "markdown":
        return to_markdown(d)
    return to_text(d, colour)
