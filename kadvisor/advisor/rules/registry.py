"""The rule registry: one small function per problem, registered by name.

A rule is ``rule(features, thresholds) -> Finding | None``: it returns a `Finding`
when it sees its problem, an *undecided* finding (`findings.undecided`) when it cannot
judge the run, and None when the run does not show the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Finding

RuleFn = Callable[[RunFeatures, dict], "Finding | None"]


@dataclass(frozen=True)
class Rule:
    """A registered rule.

    Attributes:
        name: The finding id it produces.
        fn: The rule function.
        cheap: Whether it is cheap and meaningful on a partial run (live advice).
        curve: Whether it reads learning curves (scored against the labelled curves);
            False for rules that read the recipe and dataset facts.
    """

    name: str
    fn: RuleFn
    cheap: bool = False
    curve: bool = True


RULES: dict[str, Rule] = {}


def rule(name: str, *, cheap: bool = False, curve: bool = True) -> Callable[[RuleFn], RuleFn]:
    """Registers a rule function under ``name``."""

    def decorate(fn: RuleFn) -> RuleFn:
        if name in RULES:
            raise ValueError(f"rule '{name}' is registered twice")
        RULES[name] = Rule(name, fn, cheap, curve)
        return fn

    return decorate
