"""Reports of a `Diagnosis`: text for people, Markdown, JSON.

Text fits one screen: the headline numbers, then each finding (most important first)
with its top actions; colour (ANSI) only when asked for, i.e. on a TTY.
"""

from __future__ import annotations

from typing import Any

from kadvisor.advisor.engine import Diagnosis
from kadvisor.advisor.findings import Action, Finding

_COLOURS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[2m"}
_RESET = "\033[0m"
FORMATS = ("text", "json", "markdown")


def show_value(value: Any) -> str:
    """A short TOML-like rendering of a patch value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value[:1] in "×+≥≤" else f'"{value}"'
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return f"[{len(value)} stage tables]"
    return str(value)


def describe_action(action: Action) -> str:
    """``optimizer.weight_decay: 0 → 0.0001`` (or ``×0.2`` without a recipe)."""
    parts = []
    for path, new in action.patch.items():
        if path in action.change:
            parts.append(f"{path}: {show_value(action.change[path][0])} → {show_value(new)}")
        else:
            parts.append(f"{path} = {show_value(new)}")
    return ", ".join(parts) or "(no recipe change)"


def _headline(d: Diagnosis) -> str:
    s = d.features
    bits = [f"{s.get('epochs', 0)} epochs"]
    if "val_loss_best" in s:
        bits.append(f"best val_loss {s['val_loss_best']:.4g} at epoch {s['val_loss_best_epoch']}")
    metric = s.get("metric")
    if metric and f"val_{metric}_last" in s:
        bits.append(f"last val_{metric} {s[f'val_{metric}_last']:.4g}")
    if "judged_stage" in s:
        first, last = s["judged_epochs"]
        bits.append(f"curves read on the last stage '{s['judged_stage']}' (epochs {first}–{last})")
    return f"{d.source}: " + ", ".join(bits)


def numbered_actions(d: Diagnosis) -> list[tuple[Finding, Action]]:
    """All actions in ranked order (``--action N`` counts from 1 in this list)."""
    return [(f, a) for f in d.findings for a in f.actions if a.patch]


def severity_tag(severity: str, colour: bool = False) -> str:
    """``WARNING`` padded to one width, in colour when asked (a TTY)."""
    tag = f"{severity.upper():7s}"
    return f"{_COLOURS.get(severity, '')}{tag}{_RESET}" if colour else tag


def to_text(d: Diagnosis, colour: bool = False, max_actions: int = 2) -> str:
    """Plain-text report: headline, ranked findings, numbered actions, undecided rules."""
    lines = [_headline(d)]
    if d.healthy:
        lines.append("healthy: no problem found — nothing urgent to change.")
    elif not d.judged:
        lines.append("too little to judge: every curve rule needs more epochs or a validation curve "
                     "(see 'cannot judge' below) — this is not a clean bill of health.")
    index = {id(a): i + 1 for i, (_, a) in enumerate(numbered_actions(d))}
    for f in d.findings:
        lines.append(f"{severity_tag(f.severity, colour)} {f.rule} ({f.confidence:.2f}): {f.summary}")
        actions = [a for a in f.actions if a.patch]
        for a in actions[:max_actions]:
            lines.append(f"    [{index[id(a)]}] {describe_action(a)} — {a.why}")
        if len(actions) > max_actions:
            rest = [index[id(a)] for a in actions[max_actions:]]
            lines.append(f"    (+{len(rest)} more: [{rest[0]}]{'' if len(rest) == 1 else f'–[{rest[-1]}]'}, "
                         "see --format markdown)")
    for note in d.notes:
        lines.append(f"note: {note.rule}: {note.summary}")
    if d.undecided:
        lines.append("cannot judge: " + "; ".join(f"{u.rule}" for u in d.undecided))
    return "\n".join(lines)


def to_markdown(d: Diagnosis) -> str:
    """Markdown report: a findings table and the actions as a numbered list."""
    lines = [f"## Diagnosis of `{d.source}`", "", _headline(d), ""]
    if d.healthy:
        lines.append("**healthy** — no problem found.")
    elif not d.judged:
        lines.append("**too little to judge** — every curve rule needs more epochs or a validation curve.")
    else:
        lines += ["| severity | finding | confidence | summary |", "|---|---|---|---|"]
        for f in d.findings:
            lines.append(f"| {f.severity} | `{f.rule}` | {f.confidence:.2f} | {f.summary} |")
        lines += ["", "### Actions", ""]
        for i, (f, a) in enumerate(numbered_actions(d), 1):
            lines.append(f"{i}. `{describe_action(a)}` ({f.rule}) — {a.why}")
    if d.notes:
        lines += [""] + [f"Note: `{n.rule}` — {n.summary}" for n in d.notes]
    if d.undecided:
        lines += ["", "Cannot judge: " + "; ".join(f"`{u.rule}` ({u.summary})" for u in d.undecided)]
    return "\n".join(lines) + "\n"


def render(d: Diagnosis, fmt: str, colour: bool = False) -> str:
    """Renders in ``fmt`` (one of `FORMATS`)."""
    if fmt == "json":
        return d.to_json()
    if fmt == "markdown":
        return to_markdown(d)
    return to_text(d, colour=colour)
