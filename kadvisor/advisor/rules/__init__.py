"""Advisor rules, one small function per problem; importing this registers them all."""

from kadvisor.advisor.rules import generalisation, progress, setup, training  # noqa: F401
from kadvisor.advisor.rules.registry import RULES, Rule, rule

__all__ = ["RULES", "Rule", "rule"]
