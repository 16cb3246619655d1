"""`kadvisor diagnose` on a K-fold parent directory: every fold plus the consensus."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kadvisor.advisor.command import diagnose_command
from kadvisor.advisor.kfold import diagnose_kfold, is_kfold_parent
from kadvisor.cli import main
from kadvisor.errors import InputError
from kadvisor.recipe import Recipe, load_recipe, to_toml

N = 30
T = np.arange(N)


def history(overfit: bool) -> str:
    loss = 0.05 + 2 * np.exp(-0.2 * T)
    val = 0.5 + np.exp(-0.4 * T) + 0.03 * np.clip(T - 8, 0, None) if overfit else loss * 1.1
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss,lr,stage,seconds"]
    rows += [f"{i},{1 - loss[i] / 2.1},{loss[i]},{1 - val[i] / 2.1},{val[i]},0.001,train,1.0" for i in range(N)]
    return "\n".join(rows) + "\n"


@pytest.fixture
def parent(tmp_path):
    """Three folds: two overfit, one does not; fold-4 is listed but was never written."""
    root = tmp_path / "digits-kfold"
    root.mkdir()
    (root / "recipe.toml").write_text("# cross-validated\n" + to_toml(Recipe()))
    summary = {"val_accuracy": {"mean": 0.8, "std": 0.02, "values": [0.78, 0.8, 0.82]}}
    (root / "kfold.json").write_text(json.dumps(
        {"folds": 4, "runs": ["fold-1", "fold-2", "fold-3", "fold-4"], "status": "interrupted", "summary": summary}))
    for i, overfit in enumerate([True, True, False], 1):
        fold = root / f"fold-{i}"
        fold.mkdir()
        (fold / "history.csv").write_text(history(overfit))
        (fold / "recipe.toml").write_text(to_toml(Recipe()))
    return root


def test_consensus_counts_the_folds(parent):
    assert is_kfold_parent(str(parent))
    d = diagnose_kfold(str(parent))
    assert list(d.folds) == ["fold-1", "fold-2", "fold-3"] and d.majority == 2
    top = d.consensus[0]
    assert top.finding.rule == "overfitting" and top.folds == ["fold-1", "fold-2"]
    assert "overfitting" not in d.folds["fold-3"].labels
    data = d.to_dict()
    assert data["consensus"][0]["count"] == 2 and data["kfold"]["summary"]["val_accuracy"]["mean"] == 0.8
    assert set(data["folds"]) == {"fold-1", "fold-2", "fold-3"}


def test_command_writes_every_diagnosis_and_applies_the_consensus(parent, tmp_path):
    out, lines = tmp_path / "next.toml", []
    diagnose_command(str(parent), apply=str(out), plot=str(tmp_path / "folds.png"), echo=lines.append)
    text = "\n".join(lines)
    assert "overfitting in 2/3 folds (fold-1, fold-2)" in text and "val_accuracy 0.8" in text
    assert "fold-3:" in text
    assert json.loads((parent / "diagnosis.json").read_text())["consensus"][0]["rule"] == "overfitting"
    for i in (1, 2, 3):
        assert (parent / f"fold-{i}" / "diagnosis.json").exists()
    assert "# cross-validated" in out.read_text()
    assert load_recipe(str(out)).model.dropout == pytest.approx(0.2)  # the recipe has none: dropout leads
    assert (tmp_path / "folds.png").read_bytes()[:4] == b"\x89PNG"


def test_markdown_and_json_through_the_cli(parent):
    result = CliRunner().invoke(main, ["diagnose", str(parent), "--format", "markdown"])
    assert result.exit_code == 0 and "| `overfitting` | 2/3 |" in result.output
    result = CliRunner().invoke(main, ["diagnose", str(parent), "--format", "json"])
    assert json.loads(result.output)["healthy"] is False


def test_broken_kfold_json_is_a_one_line_error(parent):
    (parent / "kfold.json").write_text('{"folds": 2}')
    with pytest.raises(InputError, match="'runs' list"):
        diagnose_kfold(str(parent))
    (parent / "kfold.json").write_text('{"runs": ["nope"]}')
    with pytest.raises(InputError, match="none of the fold directories"):
        diagnose_kfold(str(parent))
    result = CliRunner().invoke(main, ["diagnose", str(parent)])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and result.output.startswith("Error:")
