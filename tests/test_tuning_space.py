"""The tuner's pure parts: search space parsing, hyperparameters, edges, refine, resume checks."""

import math

import keras_tuner
import pytest

from kadvisor.errors import InputError, RecipeError
from kadvisor.recipe import recipe_from_text
from kadvisor.recipe.schema import Recipe
from kadvisor.recipe.search_space import parse_space
from kadvisor.tuning import tunedir
from kadvisor.tuning.distributed import DEFAULT_WAIT, Role, choose_role
from kadvisor.tuning.hyperparameters import searched_values, trial_patch
from kadvisor.tuning.outputs import best_recipe_text
from kadvisor.tuning.refine import narrowed, refine_text, top_rows
from kadvisor.tuning.results import TrialRow, edge_warnings, leaderboard_text, trial_line
from kadvisor.tuning.search_recipe import search_recipe


def space_of(text: str):
    return parse_space(recipe_from_text(text).search.space, Recipe)


@pytest.mark.parametrize("entry, message", [
    ('"optimizer.lerning_rate" = { log_uniform = [1e-4, 1e-1] }',
     r"recipe.toml:3: search.space.optimizer.lerning_rate: unknown field 'optimizer.lerning_rate' — did you mean 'optimizer.learning_rate'\?"),
    ('"model.dropout" = { uniform = [0.5, 0.1] }', r"recipe.toml:3: .*must have low < high, got \[0.5, 0.1\]"),
    ('"model.dropout" = { uniform = [0.1, 1.5] }', r"recipe.toml:3: search.space.model.dropout.uniform: model.dropout must be a float in \[0, 1\), got 1.5"),
    ('"optimizer.learning_rate" = { log_uniform = [0.0, 0.1] }', r"recipe.toml:3: .*learning_rate must be a float > 0, got 0.0"),
    ('"optimizer.learning_rate" = { int = [1, 4] }', r"recipe.toml:3: .*int needs an integer field.*use uniform"),
    ('"optimizer.name" = { uniform = [1, 2] }', r"recipe.toml:3: .*optimizer.name must be one of"),
    ('"model.dropout" = { bool = true }', r"recipe.toml:3: .*needs a true/false field"),
    ('"model.head" = { choice = ["gap", "bilinar"] }', r"recipe.toml:3: search.space.model.head.choice: .*did you mean 'bilinear'"),
    ('"model.dropout" = { uniform = [0.1, 0.5], choice = [0.1] }', r"recipe.toml:3: .*exactly one of"),
    ('"model.dropout" = { choice = [0.1, 0.2], step = 0.1 }', r"recipe.toml:3: .*step applies to ranges"),
    ('"optimizer.learning_rate" = { log_uniform = [1e-4, 1e-1], step = 0.5 }', r"recipe.toml:3: .*factor and must be > 1"),
    ('"search.max_epochs" = { int = [1, 5] }', r"recipe.toml:3: .*the \[search\] section cannot be searched"),
    ('"model.dropout" = [0.1, 0.5]', r"recipe.toml:3: search.space.model.dropout must be a table"),
    ('model.width = { int = [8, 32], step = 2.5 }', r"recipe.toml:3: .*step must be a whole number"),
])
def test_space_errors_name_file_line_path_value_and_expectation(entry, message):
    with pytest.raises(RecipeError, match=message):
        recipe_from_text(f"name = 'x'\n[search.space]\n{entry}\n")


def test_space_parses_every_kind_quoted_or_nested():
    space = space_of(
        "[search.space]\n"
        '"optimizer.learning_rate" = { log_uniform = [1e-4, 1e-1] }\n'
        "model.dropout = { uniform = [0.1, 0.5] }\n"
        '"train.batch_size" = { int = [16, 64], step = 16 }\n'
        '"model.width" = { uniform = [8, 32] }\n'
        '"data.image_size" = { choice = [[16, 16], [24, 24]] }\n'
        '"optimizer.nesterov" = { bool = true }\n'
    )
    by_path = {d.path: d for d in space}
    assert set(by_path) == {"optimizer.learning_rate", "model.dropout", "train.batch_size", "model.width",
                            "data.image_size", "optimizer.nesterov"}
    assert by_path["train.batch_size"].integer and by_path["train.batch_size"].step == 16
    assert by_path["model.width"].integer and by_path["model.width"].step == 1
    assert not by_path["model.dropout"].integer
    assert by_path["data.image_size"].choices == ([16, 16], [24, 24])


def test_trial_values_become_valid_recipe_patches():
    space = space_of(
        "[search.space]\n"
        '"optimizer.learning_rate" = { log_uniform = [1e-4, 1e-1] }\n'
        '"train.batch_size" = { int = [16, 64], step = 16 }\n'
        '"model.width" = { log_uniform = [8, 64] }\n'
        '"data.image_size" = { choice = [[16, 16], [24, 24]] }\n'
        '"optimizer.nesterov" = { bool = true }\n'
    )
    hp = keras_tuner.HyperParameters()
    trial_patch(space, hp)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"optimizer.learning_rate": "Float", "train.batch_size": "Int", "model.width": "Int",
                     "data.image_size": "Choice", "optimizer.nesterov": "Boolean"}
    assert hp.space[0].sampling == "log" and hp.space[2].sampling == "log"
    for seed in range(5):  # random draws, decoded, are values the recipe accepts
        values = {p.name: p.random_sample(seed) for p in hp.space}
        patch = searched_values(space, values)
        assert patch["data.image_size"] in ([16, 16], [24, 24])
        assert patch["train.batch_size"] in (16, 32, 48, 64)
        assert 1e-4 <= patch["optimizer.learning_rate"] <= 1e-1
        recipe = Recipe()
        for path, value in patch.items():
            recipe.set(path, value)
        assert recipe.data.image_size == patch["data.image_size"]


def row(trial_id, score, status="COMPLETED", epochs=2, **values):
    return TrialRow(trial_id, status, score, {k.replace("__", "."): v for k, v in values.items()}, epochs=epochs, trained=1)


def test_edge_warnings_say_which_side_and_suggest_a_valid_wider_range():
    space = space_of(
        "[search.space]\n"
        '"optimizer.learning_rate" = { log_uniform = [1e-4, 1e-2] }\n'
        '"model.dropout" = { uniform = [0.1, 0.5] }\n'
        '"train.batch_size" = { int = [16, 64], step = 16 }\n'
        '"model.width" = { choice = [8, 16, 32] }\n'
    )
    best = row("0001", 0.9, optimizer__learning_rate=9.9e-3, model__dropout=0.3,
               train__batch_size=64, model__width=16)
    warnings = edge_warnings(space, best)
    assert set(warnings) == {"optimizer.learning_rate", "train.batch_size"}
    assert "at the top of its range [0.0001, 0.01]" in warnings["optimizer.learning_rate"]
    assert "{ log_uniform = [0.0001, 0.1] }" in warnings["optimizer.learning_rate"]
    assert "{ int = [16, 96] }" in warnings["train.batch_size"]  # half the width, in whole steps of 16
    best = row("0002", 0.9, optimizer__learning_rate=1e-3, model__dropout=0.11, train__batch_size=32, model__width=32)
    warnings = edge_warnings(space, best)
    assert set(warnings) == {"model.dropout", "model.width"}
    # Half the width below 0.1 is negative: the suggestion reaches only the field's own limit.
    assert "at the bottom of its range [0.1, 0.5]; widen the range, e.g. { uniform = [0, 0.5] }" in warnings["model.dropout"]
    assert "largest choice" in warnings["model.width"]
    low = edge_warnings(space_of('[search.space]\n"model.dropout" = { uniform = [0.0, 0.5] }\n'), row("3", 0.9, model__dropout=0.0))
    assert low == {}  # dropout cannot go below 0: nothing to widen


def test_narrowed_ranges_stay_inside_and_around_the_top_values():
    (lr, width, dropout) = space_of(
        "[search.space]\n"
        '"optimizer.learning_rate" = { log_uniform = [1e-5, 1e-1] }\n'
        '"model.width" = { int = [8, 64], step = 8 }\n'
        '"model.dropout" = { uniform = [0.0, 0.5] }\n'
    )
    low, high = narrowed(lr, [1e-3, 2e-3, 4e-3])
    assert 1e-5 < low < 1e-3 and 4e-3 < high < 1e-1
    assert math.log10(high / low) < 0.5 * math.log10(1e-1 / 1e-5)
    low, high = narrowed(width, [32, 32])
    assert (low, high) == (24, 40)  # on the old grid, one step around
    assert narrowed(dropout, [0.0, 0.05]) == (0.0, 0.1)


def test_refine_text_rewrites_ranges_keeping_comments():
    text = (
        "# my search\nname = 'r'\n[search]\nobjective = 'val_accuracy'\n[search.space]\n"
        "# learning rates worth trying\n"
        '"optimizer.learning_rate" = { log_uniform = [1e-5, 1e-1] }  # wide\n'
        "model.dropout = { uniform = [0.0, 0.5] }\n"
        '"model.width" = { choice = [8, 16] }\n'
    )
    rows = [row(f"{i:04d}", s, optimizer__learning_rate=lr, model__dropout=d, model__width=8)
            for i, (s, lr, d) in enumerate([(0.9, 1e-3, 0.1), (0.8, 2e-3, 0.2), (0.85, 3e-3, 0.15),
                                            (0.2, 5e-2, 0.45), (0.1, 1e-5, 0.0)])]
    assert [r.trial_id for r in top_rows(rows, "max")] == ["0000", "0002", "0001"]
    new, lines = refine_text(text, "r.toml", rows, "max", "tuning/r")
    assert "# my search" in new and "# learning rates worth trying" in new
    assert "narrowed by kadvisor tune --refine around the top 3 trials of tuning/r" in new
    space = {d.path: d for d in parse_space(recipe_from_text(new).search.space, Recipe)}
    assert 1e-5 < space["optimizer.learning_rate"].low <= 1e-3 and 3e-3 <= space["optimizer.learning_rate"].high < 1e-1
    assert 0.0 <= space["model.dropout"].low <= 0.1 and 0.2 <= space["model.dropout"].high < 0.5
    assert space["model.width"].choices == (8, 16)  # choices are kept
    assert len(lines) == 2 and lines[0].startswith("optimizer.learning_rate: [1e-05, 0.1] → [")


def test_leaderboard_ranks_and_progress_line():
    rows = [row("0000", 0.5, optimizer__learning_rate=1e-3), row("0001", 0.7, optimizer__learning_rate=2e-3),
            TrialRow("0002", "FAILED", None, {"optimizer.learning_rate": 5e-2}, message="model.head: boom")]
    text = leaderboard_text(rows, "val_accuracy", "max", ["optimizer.learning_rate"])
    lines = text.splitlines()
    assert lines[0] == "rank,trial,status,val_accuracy,epochs,trained,continues,seconds,optimizer.learning_rate"
    assert lines[1].startswith("1,0001,COMPLETED,0.7,") and lines[2].startswith("2,0000,")
    assert lines[3].startswith(",0002,FAILED,")
    assert trial_line(rows[0], rows[1], "val_accuracy", "1/10") == (
        "trial 0000 (1/10) val_accuracy 0.5000 (2 epochs) [optimizer.learning_rate=0.001] | best 0.7000 (trial 0001)")
    assert trial_line(rows[2], rows[1], "val_accuracy") == "trial 0002 failed: model.head: boom [optimizer.learning_rate=0.05]"


def test_best_recipe_keeps_comments_and_marks_edge_values():
    text = "# mine\n[optimizer]\nlearning_rate = 1e-3  # base\n[model]\ndropout = 0.1\n"
    best = row("0003", 0.91, optimizer__learning_rate=0.0023346017951868896, model__dropout=0.49)
    out = best_recipe_text(text, best, "val_accuracy", 7, {"model.dropout": "model.dropout: at the top"}, tunedir.Path("t"))
    recipe = recipe_from_text(out)
    assert recipe.optimizer.learning_rate == 0.002335 and recipe.model.dropout == 0.49
    assert "# mine" in out and "kadvisor tune: best of 7 trials (val_accuracy 0.9100)" in out
    assert "dropout = 0.49 # kadvisor tune: at the edge of the searched range; widen it" in out
    assert "# warning: model.dropout: at the top" in out


BASE = "name = 'r'\n[search]\nalgorithm = '{algo}'\nmax_epochs = {max_epochs}\n{extra}\n[search.space]\n{space}\n"


def searched(algo="hyperband", max_epochs=4, extra="", space='"model.dropout" = { uniform = [0.0, 0.5] }',
             stages=""):
    recipe = recipe_from_text(BASE.format(algo=algo, max_epochs=max_epochs, extra=extra, space=space) + stages, "r.toml")
    return search_recipe(recipe, parse_space(recipe.search.space, Recipe))


def test_search_recipe_applies_subsample_classes_and_hyperband_budget():
    recipe, notes = searched(extra="subsample = 0.25\nclasses = ['1', '7']\n[data]\nsubsample = 0.8")
    assert recipe.data.subsample == pytest.approx(0.2) and recipe.data.classes == ["1", "7"]
    assert recipe.train.epochs == 4 and notes == []
    recipe, _ = searched(algo="random", max_epochs=4)
    assert recipe.train.epochs == 30  # random search trains the recipe's own epochs


def test_search_recipe_errors_and_notes_for_staged_recipes():
    stages = ("[[stages]]\nname = 'head'\ntrainable = 'head'\ntrain.epochs = 1\n"
              "[[stages]]\nname = 'all'\ntrain.epochs = 2\nmodel.dropout = 0.3\n")
    with pytest.raises(RecipeError, match=r"r.toml:4: search.max_epochs must be at most the 3 epochs of the recipe's stages.*got 4"):
        searched(max_epochs=4, stages=stages)
    recipe, notes = searched(max_epochs=3, stages=stages)
    assert recipe.train.epochs == 30  # the stages hold the axis
    assert notes == ["note: stages[1] ('all') sets model.dropout itself; the searched value applies to the other stages only"]
    with pytest.raises(RecipeError, match=r"r.toml:7: search.space.train.epochs: Hyperband sets each trial's epochs"):
        searched(space='"train.epochs" = { int = [1, 5] }')
    with pytest.raises(RecipeError, match=r"r.toml:5: search.classes must be a subset of data.classes"):
        searched(extra="classes = ['1', '9']\n[data]\nclasses = ['1', '2']")


def test_resume_applies_more_trials_and_refuses_other_changes(tmp_path):
    def recipe(trials=3, high=0.5):
        text = BASE.format(algo="random", max_epochs=2, extra=f"max_trials = {trials}",
                           space=f'"model.dropout" = {{ uniform = [0.0, {high}] }}')
        return recipe_from_text(text, "r.toml"), text

    assert tunedir.open_search(tmp_path, *recipe()) == []
    (tmp_path / "keras_tuner").mkdir()
    (tmp_path / "keras_tuner" / "oracle.json").write_text("{}")
    assert tunedir.open_search(tmp_path, *recipe()) == []
    assert tunedir.open_search(tmp_path, *recipe(trials=5)) == [
        "search.max_trials: 3 → 5 since the saved search; applied"]
    with pytest.raises(RecipeError, match=r"holds a search with other settings \(search.space.model.dropout: "
                                          r"\{'uniform': \[0.0, 0.5\]\} → \{'uniform': \[0.0, 0.6\]\}\).*--out DIR"):
        tunedir.open_search(tmp_path, *recipe(trials=5, high=0.6), write=False)
    assert "max_trials = 5" in (tmp_path / "search.toml").read_text()


def test_roles_from_options_and_kerastuner_variables(monkeypatch):
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert choose_role() == Role()
    assert choose_role(chief=True) == Role("chief", "chief", "127.0.0.1", 8000)
    assert choose_role(worker="w1", port=9001) == Role("worker", "w1", "127.0.0.1", 9001, DEFAULT_WAIT)
    assert choose_role(worker="w1", port=9001, wait=5).wait == 5
    with pytest.raises(InputError, match="--worker: got 'chief2'"):
        choose_role(worker="chief2")
    with pytest.raises(InputError, match="got both"):
        choose_role(chief=True, worker="1")
    with pytest.raises(InputError, match="--port: got 70000"):
        choose_role(chief=True, port=70000)
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner3")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "10.0.0.2")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8123")
    assert choose_role() == Role("worker", "tuner3", "10.0.0.2", 8123, DEFAULT_WAIT)
    import os

    with Role("chief", "chief", "127.0.0.1", 9).environment():
        assert os.environ["KERASTUNER_TUNER_ID"] == "chief" and os.environ["KERASTUNER_ORACLE_PORT"] == "9"
    assert os.environ["KERASTUNER_TUNER_ID"] == "tuner3"
