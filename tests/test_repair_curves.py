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
    for root, causes in ((ROOT, CAUSES), (HELD_OUT, HELD_OUT_CAUSES)):
        for name in causes:
            assert sorted(os.listdir(os.path.join(root, name))) == ["data.json", "history.csv", "metrics.json",
                                                                    "recipe.toml"], name


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
def test_healthy_controls_get_no_change_at_all(name):
    # Every change trains something else: even a larger validation split, suggested for a
    # healthy run's noisy validation, cost such runs half a point over 12 seeds.
    d = _diagnosis(name)
    assert d.healthy, d.labels
    assert not [a for f in d.findings for a in f.actions]


# Held out: runs written after the rules (other magnitudes, seed 11), never used to
# refine them (`advice_repairs.py --scenarios held-out`). Scored as a whole, as the
# benchmark is: on these saved runs the first action names the cause in 23 of 27 (a 512
# batch and a multistep schedule on full digits that still reached 0.97-0.99 look
# healthy; rotations of 0.3 with 70 % zoom get "train longer" while validation still
# improves); the floor sits one below.
HELD_OUT = os.path.join(os.path.dirname(__file__), "data", "repair_runs_held_out")
HELD_OUT_CAUSES = json.load(open(os.path.join(HELD_OUT, "causes.json"), encoding="utf-8"))


def test_held_out_runs_the_first_action_names_the_cause_and_controls_are_left_alone():
    named, missed = 0, []
    for name, case in sorted(HELD_OUT_CAUSES.items()):
        d = diagnose(os.path.join(HELD_OUT, name))
        first = d.findings[0].actions[0].patch if d.findings and d.findings[0].actions else {}
        if case["healthy"]:
            assert d.healthy and not first, (name, d.labels, first)
        elif set(first) & set(case["expect"]):
            named += 1
        else:
            missed.append((name, first))
    mis_tuned = sum(not c["healthy"] for c in HELD_OUT_CAUSES.values())
    assert mis_tuned == 27 and named >= 22, missed
