"""Tests of concrete patches and reconciliation of contradicting actions."""

import pytest

from kadvisor.advisor.actions import apply_relative, concretize, direction, reconcile
from kadvisor.advisor.findings import Action, Finding


@pytest.mark.parametrize("current,spec,expected", [
    (0.1, "×0.2", 0.02), (0.0, "×10≥1e-4", 1e-4), (1e-4, "×10≥1e-4", 1e-3),
    (30, "×2", 60), (30, "+30", 60), (0.4, "+0.2≤0.5", 0.5), (0, "≥5", 5), (10, "≥5", 10),
])
def test_apply_relative(current, spec, expected):
    assert apply_relative(current, spec) == pytest.approx(expected)
    assert type(apply_relative(current, spec)) is type(current)


def test_concretize_with_and_without_recipe():
    action = Action({"optimizer.learning_rate": "×0.2"}, "why")
    assert concretize(action, None) is action
    concrete = concretize(action, {"optimizer": {"learning_rate": 0.1}})
    assert concrete.patch == {"optimizer.learning_rate": 0.02}
    assert concrete.change == {"optimizer.learning_rate": [0.1, 0.02]}
    assert concretize(Action({"train.early_stopping": "≥5"}, ""), {"train": {"early_stopping": 8}}) is None
    assert concretize(Action({"schedule.name": "plateau"}, ""), {"schedule": {"name": "plateau"}}) is None
    # fields absent from a sparse recipe use the schema default
    assert concretize(Action({"optimizer.weight_decay": "×10≥1e-4"}, ""), {}).patch == {"optimizer.weight_decay": 1e-4}


def test_direction():
    assert direction(0.1, "×0.2") == "lower" and direction(0.1, "×3") == "raise"
    assert direction(0.1, 0.5) == "raise" and direction("a", "b") == "set:'b'"


def finding(rule, severity, confidence, *actions):
    return Finding(rule, severity, confidence, "s", actions=list(actions))


def test_reconcile_higher_ranked_finding_wins():
    lower = Action({"optimizer.learning_rate": "×0.1"}, "")
    raise_ = Action({"optimizer.learning_rate": "×3"}, "")
    epochs = Action({"train.epochs": "×2"}, "")
    findings = [finding("diverged", "error", 0.9, lower), finding("slow_convergence", "warning", 0.8, raise_, epochs)]
    dropped = reconcile(findings, {"optimizer": {"learning_rate": 0.1}})
    assert findings[0].actions[0].patch == {"optimizer.learning_rate": 0.01}
    assert [a.patch for a in findings[1].actions] == [{"train.epochs": 60}]
    assert dropped == [{"rule": "slow_convergence", "path": "optimizer.learning_rate", "because": "diverged"}]


def test_reconcile_same_direction_is_kept_and_alternatives_of_one_rule_survive():
    a = Action({"optimizer.learning_rate": "×0.3"}, "")
    b = Action({"optimizer.learning_rate": "×0.5"}, "")
    alt1, alt2 = Action({"data.balance": "class_weight"}, ""), Action({"data.balance": "oversample"}, "")
    findings = [finding("unstable", "warning", 0.9, a, alt1, alt2), finding("noisy_validation", "warning", 0.5, b)]
    assert reconcile(findings, None) == []
    assert len(findings[0].actions) == 3 and len(findings[1].actions) == 1
