"""The advisor on real runs of known cause: ``tests/data/repair_runs``.

Each folder holds the contract files (no model) of one deliberately mis-tuned digits
run written by ``python benchmarks/advice_repairs.py --save-curves``; ``causes.json``
says what was broken (``--set`` overrides of the base recipe) and which recipe paths
address it. The first action must change one of those paths — the cause, not the
symptom; the healthy controls are negative cases: nothing broken may be reported.
"""

import json
import os

import pytest

from kadvisor.advisor import diagnose

ROOT = os.path.join(os.path.dirname(__file__), "data", "repair_runs")
CAUSES = json.load(open(os.path.join(ROOT, "causes.json"), encoding="utf-8"))
MIS_TUNED = sorted(n for n, c in CAUSES.items() if not c["healthy"])
CONTROLS = sorted(n for n, c in CAUSES.items() if c["healthy"])


def _diagnosis(name: str):
    return diagnose(os.path.join(ROOT, name))


def test_the_saved_runs_cover_both_base_recipes_and_the_controls():
    assert len(MIS_TUNED) >= 20 and len(CONTROLS) >= 3
    assert {CAUSES[n]["base"] for n in MIS_TUNED} == {"recipes/digits.toml", "recipes/digits_few.toml"}
    for name in CAUSES:
        assert sorted(os.listdir(os.path.join(ROOT, name))) == ["data.json", "history.csv", "metrics.json",
                                                                "recipe.toml"]


@pytest.mark.parametrize("name", MIS_TUNED)
def test_the_first_action_changes_the_known_cause(name):
    d = _diagnosis(name)
    assert d.findings, f"{name}: no finding for {CAUSES[name]['cause']}"
    first = d.findings[0].actions[0].patch
    assert set(first) & set(CAUSES[name]["expect"]), (
        f"{name} ({CAUSES[name]['cause']}): first action {first}, expected a change of {CAUSES[name]['expect']}")


def _set_value(name: str, path: str) -> float:
    for override in CAUSES[name]["overrides"]:
        key, _, value = override.partition("=")
        if key == path:
            return float(value)
    raise KeyError(path)


@pytest.mark.parametrize("name", [n for n in MIS_TUNED if "_lr_high" in n or "_lr_low" in n])
def test_a_learning_rate_out_of_range_is_moved_by_at_least_a_hundredfold_the_right_way(name):
    was = _set_value(name, "optimizer.learning_rate")
    new = _diagnosis(name).findings[0].actions[0].patch["optimizer.learning_rate"]
    if "_lr_high" in name:
        assert new <= was / 100, (was, new)
    else:
        assert new >= was * 10, (was, new)


@pytest.mark.parametrize("name", CONTROLS)
def test_healthy_controls_get_no_error_and_no_change_to_the_model_or_optimizer(name):
    d = _diagnosis(name)
    assert not [f for f in d.findings if f.severity == "error"], d.labels
    touched = {path for f in d.findings for a in f.actions[:1] for path in a.patch}
    assert not touched & {"optimizer.learning_rate", "optimizer.weight_decay", "model.width", "model.dropout",
                          "train.batch_size", "model.backbone"}, touched
