"""`kadvisor tune` on digits: Hyperband end to end, fit of best.toml, resume, refine, stages."""

import csv
import re

import keras
import keras_tuner
import pytest
from click.testing import CliRunner

from kadvisor.cli import main
from kadvisor.data import prepare_data
from kadvisor.recipe import load_recipe, recipe_from_text
from kadvisor.recipe.schema import Recipe
from kadvisor.recipe.search_space import parse_space
from kadvisor.tuning.hypermodel import RecipeHyperModel
from kadvisor.tuning.search_recipe import search_recipe

# Small and fast: 8×8 digits at 12×12, a 4-filter CNN, half the training split.
RECIPE = """\
# digits search for the tests
name = "dt"
seed = 3

[data]
source = "sklearn:digits"
image_size = [12, 12]
channels = 1

[model]
backbone = "small_cnn"
width = 4                       # tiny on purpose

[optimizer]
learning_rate = 3e-3

[train]
epochs = 5
batch_size = 64

[search]
algorithm = "hyperband"
max_epochs = 2
factor = 2
subsample = 0.5

[search.space]
"optimizer.learning_rate" = { log_uniform = [1e-3, 3e-2] }   # around Adam's default
"model.dropout" = { uniform = [0.0, 0.4] }
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def leaderboard(directory):
    with open(directory / "leaderboard.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def hyperband(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    (root / "dt.toml").write_text(RECIPE)
    result = invoke("tune", root / "dt.toml", "--out", root / "hb")
    return root, result


def test_hyperband_on_digits_writes_leaderboard_best_recipe_and_plot(hyperband):
    root, result = hyperband
    assert result.exit_code == 0, result.output
    rows = leaderboard(root / "hb")
    # max_epochs=2, factor=2: a bracket of 1-epoch trials whose best is continued to 2
    # epochs, and a bracket of 2-epoch trials.
    assert len(rows) >= 3 and all(r["status"] == "COMPLETED" for r in rows)
    assert {int(r["epochs"]) for r in rows} == {1, 2}
    continued = [r for r in rows if r["continues"]]
    assert continued and all(r["trained"] == "1" and r["epochs"] == "2" for r in continued)
    assert rows[0]["rank"] == "1" and float(rows[0]["val_accuracy"]) == max(float(r["val_accuracy"]) for r in rows)
    # One progress line per finished trial, each with the best so far.
    lines = [line for line in result.output.splitlines() if line.startswith("trial ")]
    assert len(lines) == len(rows) and all("| best " in line for line in lines)
    assert (root / "hb" / "search.png").stat().st_size > 1000
    text = (root / "hb" / "best.toml").read_text()
    assert "# digits search for the tests" in text and "# tiny on purpose" in text
    best = load_recipe(root / "hb" / "best.toml")
    assert best.optimizer.learning_rate == pytest.approx(float(rows[0]["optimizer.learning_rate"]), rel=1e-3)
    assert best.train.epochs == 5 and best.data.subsample == 1.0  # the search's shortcuts stay out


def test_kadvisor_fit_accepts_best_toml(hyperband, tmp_path):
    root, _ = hyperband
    result = invoke("fit", root / "hb" / "best.toml", "--epochs", "1", "--quiet", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / result.output.strip().splitlines()[-1].split("/")[-1] / "model.keras").exists()


def test_confirm_trains_the_top_distinct_trials_on_all_the_data(hyperband):
    root, _ = hyperband
    trials = len(leaderboard(root / "hb"))
    # Running the finished search again with --confirm: no new trial, then the top 2 trained.
    result = invoke("tune", root / "dt.toml", "--out", root / "hb", "--confirm", 2)
    assert result.exit_code == 0, result.output
    assert len(leaderboard(root / "hb")) == trials
    runs = sorted((root / "hb" / "confirm").iterdir())
    assert len(runs) == 2
    recipes = [load_recipe(run / "recipe.toml") for run in runs]
    searched = [float(r["optimizer.learning_rate"]) for r in leaderboard(root / "hb")]  # 4 digits
    assert recipes[0].optimizer.learning_rate != recipes[1].optimizer.learning_rate  # continuations count once
    for recipe in recipes:
        assert recipe.data.subsample == 1.0 and recipe.train.epochs == 5  # all the data, the recipe's epochs
        assert any(recipe.optimizer.learning_rate == pytest.approx(lr, rel=1e-3) for lr in searched)
    lines = [line for line in result.output.splitlines() if "→ all data val_accuracy" in line]
    assert len(lines) == 2
    winner = re.search(r"best on all the data: trial (\S+), val_accuracy ([\d.]+), (\S+)", result.output)
    assert winner and float(winner[2]) == max(float(re.search(r"all data val_accuracy ([\d.]+)", line)[1]) for line in lines)
    assert (root / "hb" / "confirm" / winner[3].split("/")[-1]).is_dir()


def test_confirm_is_refused_on_a_worker(tmp_path):
    result = CliRunner().invoke(main, ["tune", str(tmp_path / "x.toml"), "--worker", "1", "--confirm", "2"])
    assert result.exit_code == 2 and "--confirm" in result.output and "chief" in result.output


def test_running_again_continues_and_reports_changed_settings(hyperband):
    root, _ = hyperband
    before = leaderboard(root / "hb")
    again = invoke("tune", root / "dt.toml", "--out", root / "hb")
    assert again.exit_code == 0, again.output
    assert f"continuing the search in {root / 'hb'} ({len(before)} trials so far)" in again.output
    assert len(leaderboard(root / "hb")) == len(before)  # the search was complete
    changed = invoke("tune", root / "dt.toml", "--out", root / "hb", "--set", "model.width=8", "--set", "search.factor=3")
    assert changed.exit_code == 1
    assert re.search(r"holds a search with other settings \(model.width: 4 → 8; search.factor: 2 → 3\)", changed.output)


REFINE = ("--set", "search.algorithm=random", "--set", "train.epochs=1")


@pytest.fixture(scope="module")
def refined(hyperband):
    root, _ = hyperband
    return root, invoke("tune", "--refine", root / "hb", *REFINE, "--set", "search.max_trials=1")


def test_refine_narrows_the_ranges_around_the_top_trials_and_searches_again(refined):
    root, result = refined
    assert result.exit_code == 0, result.output
    narrowed = re.findall(r"^refine (\S+): \[.*\] → \[.*\] \(top \d: .*\)$", result.output, re.M)
    assert narrowed and set(narrowed) <= {"optimizer.learning_rate", "model.dropout"}
    text = (root / "hb-refine" / "search.toml").read_text()
    assert "# around Adam's default" in text and text.count("narrowed by kadvisor tune --refine") == len(narrowed)
    space = {d.path: d for d in parse_space(recipe_from_text(text).search.space, Recipe)}
    old = {"optimizer.learning_rate": (1e-3, 3e-2), "model.dropout": (0.0, 0.4)}
    rows = leaderboard(root / "hb")
    for path, (low, high) in old.items():
        new = space[path]
        assert low <= new.low < new.high <= high and ((new.low, new.high) != (low, high)) == (path in narrowed)
        best = float(rows[0][path])  # written to 4 significant digits, hence the tolerance
        assert new.low * (1 - 1e-3) <= best <= new.high * (1 + 1e-3)
    assert len(leaderboard(root / "hb-refine")) == 1


def test_resume_with_more_trials_applies_the_change_and_runs_only_the_new_ones(refined):
    root, _ = refined
    result = invoke("tune", "--refine", root / "hb", *REFINE, "--set", "search.max_trials=2")
    assert result.exit_code == 0, result.output
    assert "search.max_trials: 1 → 2 since the saved search; applied" in result.output
    assert f"continuing the search in {root / 'hb-refine'} (1 trial so far)" in result.output
    assert len(re.findall(r"^trial \d \(2/2\) val_accuracy", result.output, re.M)) == 1
    assert sorted(r["trial"] for r in leaderboard(root / "hb-refine")) == ["0", "1"]


def test_subsample_and_classes_shrink_the_search_data():
    recipe = recipe_from_text(RECIPE.replace("subsample = 0.5", "subsample = 0.25\nclasses = ['0', '1', '2']"))
    searched, _ = search_recipe(recipe, parse_space(recipe.search.space, Recipe))
    full, small = prepare_data(recipe, batched=False), prepare_data(searched, batched=False)
    full_n, small_n = full.info.splits["train"]["size"], small.info.splits["train"]["size"]
    assert small.info.num_classes == 3 and small.info.class_names == ["0", "1", "2"]
    # a quarter of the three classes' share of the training split (stratified)
    assert small_n == pytest.approx(full_n * 0.25 * 3 / 10, rel=0.1)
    assert sum(1 for _ in small.train) == small_n
    assert full.info.splits["validation"]["size"] > small.info.splits["validation"]["size"]


class StageProbe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append((epoch, self.model.get_layer("backbone").trainable))


@pytest.mark.parametrize("window, expected", [((0, 2), [(0, False), (1, True)]), ((1, 3), [(1, True), (2, True)]),
                                              ((0, 1), [(0, False)])])
def test_staged_recipe_trains_hyperband_window_in_the_right_stage(window, expected):
    text = RECIPE + ("[[stages]]\nname = 'head'\ntrainable = 'head'\ntrain.epochs = 1\n"
                     "[[stages]]\nname = 'all'\ntrain.epochs = 2\noptimizer.learning_rate = 1e-4\n")
    recipe = recipe_from_text(text.replace("max_epochs = 2", "max_epochs = 3"))
    space = parse_space(recipe.search.space, Recipe)
    searched, _ = search_recipe(recipe, space)
    model_maker = RecipeHyperModel(searched, space, prepare_data(searched, batched=False), "val_accuracy")
    hp = keras_tuner.HyperParameters()
    probe = StageProbe()
    model = model_maker.build(hp)
    metrics = model_maker.fit(hp, model, callbacks=[probe], initial_epoch=window[0], epochs=window[1])
    assert probe.seen == expected
    assert metrics["epochs"] == window[1] and metrics["trained"] == window[1] - window[0]
    assert "val_accuracy" in metrics


def test_trials_that_cannot_work_fail_alone_and_three_in_a_row_stop_the_search(tmp_path):
    # val_fraction + test_fraction >= 0.9 is a recipe error: every trial fails at build.
    space = '"data.val_fraction" = { uniform = [0.72, 0.78] }\n'
    text = RECIPE.replace('algorithm = "hyperband"', 'algorithm = "random"\nmax_trials = 5')
    (tmp_path / "f.toml").write_text(text[: text.index("[search.space]")] + "[search.space]\n" + space)
    result = invoke("tune", tmp_path / "f.toml", "--out", tmp_path / "f")
    assert result.exit_code == 1
    assert re.search(r"Error: search stopped: Number of consecutive failures exceeded the limit of 3\. "
                     r"Last error: .*must leave at least 10% for training", result.output), result.output
    assert re.search(r"^trial 0 \(1/5\) failed: .*must leave at least 10% for training, got .* \[data.val_fraction=0\.7",
                     result.output, re.M)
    assert [r["status"] for r in leaderboard(tmp_path / "f")] == ["FAILED"] * 3
    assert not (tmp_path / "f" / "best.toml").exists()


@pytest.mark.parametrize("algorithm, expected", [("hyperband", "HyperbandTuner"), ("random", "RandomTuner"),
                                                 ("bayesian", "BayesianTuner")])
def test_each_algorithm_gets_its_kerastuner_tuner_with_the_recipe_settings(algorithm, expected, tmp_path):
    from kadvisor.tuning.tuners import build_tuner

    text = RECIPE.replace('algorithm = "hyperband"', f'algorithm = "{algorithm}"\nmax_trials = 7\n'
                          'objective = "val_loss"\nseed = 11')
    recipe = recipe_from_text(text)
    space = parse_space(recipe.search.space, Recipe)
    searched, _ = search_recipe(recipe, space)
    hypermodel = RecipeHyperModel(searched, space, prepare_data(searched, batched=False), "val_loss")
    tuner = build_tuner(searched, hypermodel, tmp_path)
    assert type(tuner).__name__ == expected and isinstance(tuner, keras_tuner.Tuner)
    oracle = tuner.oracle
    assert (oracle.objective.name, oracle.objective.direction) == ("val_loss", "min")
    assert oracle.seed == 12  # KerasTuner reads 0 as "no seed": kadvisor's seeds are shifted by one
    assert [hp.name for hp in oracle.get_space().space] == ["optimizer.learning_rate", "model.dropout"]
    if algorithm == "hyperband":
        assert (oracle.max_epochs, oracle.factor) == (2, 2)
    else:
        assert oracle.max_trials == 7
