"""Tests of `diagnose_command`: formats, diagnosis.json, --plot, --apply, --recipe."""

import json
import os

import numpy as np
import pytest

from kadvisor.advisor.command import diagnose_command
from kadvisor.errors import InputError
from kadvisor.recipe import Recipe, load_recipe, to_toml

N = 30
T = np.arange(N)


def overfit_history(path):
    loss = 0.05 + 2 * np.exp(-0.2 * T)
    val = 0.5 + np.exp(-0.4 * T) + 0.03 * np.clip(T - 8, 0, None)
    acc, vacc = 1 - loss / 2.1, 1 - val / 2.1
    rows = ["epoch,accuracy,loss,lr,val_accuracy,val_loss,stage,seconds"]
    rows += [f"{i},{acc[i]},{loss[i]},0.1,{vacc[i]},{val[i]},all,1.0" for i in range(N)]
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    overfit_history(d / "history.csv")
    (d / "recipe.toml").write_text(to_toml(Recipe()))
    (d / "data.json").write_text(json.dumps({"num_classes": 10, "splits": {"train": {"size": 1000}}}))
    return d


def capture(*args, **kwargs):
    out = []
    code = diagnose_command(*args, echo=out.append, **kwargs)
    return code, "\n".join(out)


def test_text_report_and_diagnosis_json(run_dir):
    code, text = capture(str(run_dir))
    assert code == 0
    assert "overfitting" in text and "model.dropout: 0 → 0.2" in text  # the recipe has no dropout: it leads
    assert "\033[" not in text
    saved = json.loads((run_dir / "diagnosis.json").read_text())
    assert saved["findings"][0]["rule"] == "overfitting"
    assert not [p for p in os.listdir(run_dir) if p.endswith(".tmp")]


def test_json_and_markdown_formats(run_dir):
    _, text = capture(str(run_dir), fmt="json")
    data = json.loads(text)
    assert set(data) >= {"schema", "source", "healthy", "summary", "findings", "undecided", "dropped_actions"}
    finding = data["findings"][0]
    assert set(finding) >= {"rule", "severity", "confidence", "summary", "evidence", "actions"}
    _, md = capture(str(run_dir), fmt="markdown")
    assert md.startswith("## Diagnosis") and "| `overfitting` |" in md


def test_colour_only_when_asked(run_dir):
    _, text = capture(str(run_dir), colour=True)
    assert "\033[33m" in text


@pytest.mark.parametrize("name, magic", [("curves.png", b"\x89PNG\r\n\x1a\n"), ("curves", b"\x89PNG\r\n\x1a\n"),
                                         ("curves.pdf", b"%PDF"), ("curves.svg", b"<?xml")])
def test_plot_is_written_in_the_format_its_name_asks_for(run_dir, tmp_path, name, magic):
    out = tmp_path / name
    capture(str(run_dir), plot=str(out))
    assert out.read_bytes()[: len(magic)] == magic


def test_plot_to_a_name_that_is_no_image_format_is_an_error_before_any_report(run_dir, tmp_path):
    printed = []
    with pytest.raises(InputError, match=r"curves\.txt: cannot draw a '\.txt' file; expected a name ending in .*\.png"):
        diagnose_command(str(run_dir), plot=str(tmp_path / "curves.txt"), echo=printed.append)
    assert not (tmp_path / "curves.txt").exists() and printed == []


def test_apply_without_a_recipe_is_refused_before_any_report(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss\n" + "".join(f"{e},{1 / (e + 1)},{1.5 / (e + 1)}\n" for e in range(12)))
    printed = []
    with pytest.raises(InputError, match=r"^--apply needs a recipe: diagnose a run directory or pass --recipe FILE$"):
        diagnose_command(str(log), apply=str(tmp_path / "next.toml"), echo=printed.append)
    assert printed == [] and not (tmp_path / "next.toml").exists()


def test_apply_writes_a_valid_recipe_with_the_top_action(run_dir, tmp_path):
    out = tmp_path / "next.toml"
    _, text = capture(str(run_dir), apply=str(out))
    recipe = load_recipe(str(out))
    assert recipe.model.dropout == pytest.approx(0.2)
    assert "# kadvisor diagnose: overfitting" in out.read_text()
    assert "+dropout = 0.2" in text  # the unified diff


def test_apply_second_action_and_user_recipe_keeps_comments(run_dir, tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text("# my birds experiment\n[model]\ndropout = 0.1  # light dropout\n")
    out = tmp_path / "next.toml"
    # The user's recipe has dropout, so weight decay leads and dropout is action 2.
    capture(str(run_dir), apply=str(out), action=2, recipe=str(user))
    text = out.read_text()
    assert "# my birds experiment" in text
    assert "dropout = 0.3" in text and "kadvisor diagnose: overfitting" in text
    assert load_recipe(str(out)).model.dropout == pytest.approx(0.3)


def test_apply_errors(run_dir, tmp_path):
    with pytest.raises(InputError, match="--action"):
        capture(str(run_dir), apply=str(tmp_path / "x.toml"), action=99)
    log = tmp_path / "log.csv"
    overfit_history(log)
    with pytest.raises(InputError, match="needs a recipe"):
        capture(str(log), apply=str(tmp_path / "x.toml"))


def test_plain_log_gets_relative_actions(tmp_path):
    log = tmp_path / "log.csv"
    overfit_history(log)
    _, text = capture(str(log), fmt="json")
    actions = json.loads(text)["findings"][0]["actions"]
    assert actions[0]["patch"] == {"optimizer.weight_decay": "×10≥1e-4"}


def test_bad_format_and_bad_input(tmp_path):
    with pytest.raises(InputError, match="--format"):
        capture(str(tmp_path), fmt="yaml")
    bad = tmp_path / "bad.csv"
    bad.write_text("")
    with pytest.raises(InputError):
        capture(str(bad))


def test_apply_unfreeze_appends_a_stage_that_recipe_check_accepts(tmp_path):
    from click.testing import CliRunner

    from kadvisor.cli import main

    run = tmp_path / "run"
    run.mkdir()
    t = np.arange(20)
    loss = 0.4 + np.exp(-0.5 * t)
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss,lr,stage,seconds"]
    rows += [f"{i},{0.7},{loss[i]},{0.65},{loss[i] * 1.1},0.001,head,1.0" for i in t]
    (run / "history.csv").write_text("\n".join(rows) + "\n")
    recipe = ('# transfer recipe\n[model]\nbackbone = "resnet50"\nweights = "imagenet"\n\n'
              '[[stages]]\nname = "head"  # train the new head first\ntrainable = "head"\n'
              '"optimizer.learning_rate" = 1e-3\n')
    (run / "recipe.toml").write_text(recipe)
    out = tmp_path / "next.toml"
    _, text = capture(str(run), apply=str(out))
    assert "applied unfreeze_backbone" in text
    written = out.read_text()
    assert written.startswith(recipe)  # the user's file is kept byte for byte
    assert "kadvisor diagnose: unfreeze_backbone" in written
    stages = load_recipe(str(out)).stages
    assert [s.trainable for s in stages] == ["head", "all"]
    assert stages[1].overrides["optimizer.learning_rate"] == pytest.approx(1e-4)
    result = CliRunner().invoke(main, ["recipe", "check", str(out)])
    assert result.exit_code == 0, result.output
