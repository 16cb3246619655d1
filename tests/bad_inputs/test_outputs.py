"""User-named outputs (kadvisor/outputs.py): never lose a file, one line when refused.

Every command that writes a file the user named — ``diagnose --apply`` and ``--plot``,
``init -o`` — goes through one check. Each case runs the real command line and asserts
exit 1, exactly one line ``Error: ...`` with the option, the path and what was expected,
no traceback, and that every file that was there before is byte for byte unchanged.
No training: the run directory is written by hand (diagnose reads it without TensorFlow).
"""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kadvisor.cli import main
from kadvisor.recipe import recipe_from_text, to_toml
from test_bad_inputs import GOOD

RECIPE = GOOD.replace("epochs = 1", "epochs = 24")


def _history(epochs: int = 24) -> str:
    """A run that overfits: val_loss bottoms out at epoch 8 and climbs while loss falls."""
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    for e in range(epochs):
        loss = 2.0 * math.exp(-e / 5) + 0.02
        val = 0.5 + 0.01 * (e - 8) ** 2
        rows.append(f"{e},{1 - loss / 3:.4f},{loss:.4f},{0.9 - 0.002 * abs(e - 8):.4f},{val:.4f}")
    return "\n".join(rows) + "\n"


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A run directory, the same log as a CSVLogger file, and a user's recipe, in tmp_path."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text(to_toml(recipe_from_text(RECIPE)))
    (run / "history.csv").write_text(_history())
    (run / "metrics.json").write_text(json.dumps({"status": "finished", "monitor": "val_loss", "best_epoch": 8}))
    (run / "data.json").write_text(json.dumps({"source": "sklearn:digits", "num_classes": 10}))
    (tmp_path / "log.csv").write_text(_history())
    (tmp_path / "mine.toml").write_text("# my comments\n" + RECIPE)
    (tmp_path / "other.toml").write_text("precious = true\n")
    return tmp_path


def _snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(place: Path, args: list[str], message: str) -> None:
    before = _snapshot(place)
    result = CliRunner().invoke(main, args)
    output = result.output.strip()
    assert result.exit_code == 1, output
    assert isinstance(result.exception, SystemExit), result.exception  # no uncaught error
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert re.fullmatch(message, output.removeprefix("Error: ")), output
    after = _snapshot(place)
    assert after.keys() >= before.keys()
    assert {p: after[p] for p in before} == before, "a file that was there changed"


# (id, arguments, the whole message after "Error: ")
REFUSED = [
    ("apply-over-the-log-being-diagnosed",
     ["diagnose", "log.csv", "--recipe", "mine.toml", "--apply", "log.csv", "--force"],
     r"--apply log\.csv: is this command's own input 'log\.csv'; expected another file \(kadvisor never writes over what it reads\)"),
    ("apply-over-the-recipe-being-patched",
     ["diagnose", "log.csv", "--recipe", "mine.toml", "--apply", "mine.toml", "--force"],
     r"--apply mine\.toml: is this command's own input 'mine\.toml'; expected another file .*"),
    ("apply-over-the-log-through-a-symlink",
     ["diagnose", "log.csv", "--recipe", "mine.toml", "--apply", "link.toml", "--force"],
     r"--apply link\.toml: is this command's own input 'log\.csv'; expected another file .*"),
    *[(f"apply-over-run-{name}", ["diagnose", "run", "--apply", f"run/{name}", "--force"],
       rf"--apply run/{re.escape(name)}: is the run directory file {re.escape(name)} of 'run'; expected a path "
       rf"outside the run's own files \(diagnose, evaluate and --resume read them\)")
      for name in ("history.csv", "metrics.json", "recipe.toml", "data.json")],
    ("plot-over-run-history", ["diagnose", "run", "--plot", "run/history.csv", "--force"],
     r"--plot run/history\.csv: is the run directory file history\.csv of 'run'; expected a path outside .*"),
    ("apply-over-an-existing-file-without-force",
     ["diagnose", "log.csv", "--recipe", "mine.toml", "--apply", "other.toml"],
     r"--apply other\.toml: exists; use --force to overwrite it, or choose another file"),
    ("plot-over-an-existing-file-without-force", ["diagnose", "log.csv", "--plot", "other.toml"],
     r"--plot other\.toml: exists; use --force to overwrite it, or choose another file"),
    ("apply-into-a-missing-folder", ["diagnose", "log.csv", "--recipe", "mine.toml", "--apply", "nowhere/next.toml"],
     r"--apply nowhere/next\.toml: folder 'nowhere' does not exist; expected an existing folder \(create it first\)"),
    ("plot-into-a-missing-folder", ["diagnose", "log.csv", "--plot", "nowhere/curves.png"],
     r"--plot nowhere/curves\.png: folder 'nowhere' does not exist; expected an existing folder \(create it first\)"),
    ("plot-and-apply-the-same-file",
     ["diagnose", "log.csv", "--recipe", "mine.toml", "--apply", "x.toml", "--plot", "x.toml"],
     r"--plot and --apply both name x\.toml; expected two different files"),
    ("diagnosis-json-is-a-folder", ["diagnose", "run"],
     r"run/diagnosis\.json: is a folder; expected the file diagnose writes its findings to \(move the folder away\)"),
    ("init-into-a-missing-folder", ["init", "photos", "-o", "nowhere/r.toml"],
     r"-o nowhere/r\.toml: folder 'nowhere' does not exist; expected an existing folder \(create it first\)"),
    ("init-over-an-existing-file", ["init", "photos", "-o", "other.toml"],
     r"-o other\.toml: exists; use --force to overwrite it, or choose another file"),
    ("init-over-a-run-recipe-even-with-force", ["init", "photos", "-o", "run/recipe.toml", "--force"],
     r"-o run/recipe\.toml: is the run directory file recipe\.toml of 'run'; expected a path outside .*"),
]


def _photos(root: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / "photos" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / "photos" / name / f"{i}.png")


@pytest.mark.parametrize("args, message", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_output_is_one_line_and_nothing_changes(place, args, message):
    _photos(place)
    (place / "link.toml").symlink_to(place / "log.csv")
    if args == ["diagnose", "run"]:
        (place / "run" / "diagnosis.json").mkdir()
    _refused(place, args, message)


def test_force_replaces_an_existing_file_atomically_and_keeps_the_inputs(place):
    before = _snapshot(place)
    result = CliRunner().invoke(main, ["diagnose", "log.csv", "--recipe", "mine.toml", "--apply", "other.toml", "--force"])
    assert result.exit_code == 0, result.output
    applied = recipe_from_text((place / "other.toml").read_text())  # a valid recipe now
    assert applied.train.epochs == 24 and "# my comments" in (place / "other.toml").read_text()
    assert (place / "log.csv").read_bytes() == before[place / "log.csv"]
    assert (place / "mine.toml").read_bytes() == before[place / "mine.toml"]
    assert not [p for p in place.iterdir() if p.name.endswith(".tmp")]  # no temporary left behind


def test_a_new_file_inside_a_run_directory_is_allowed(place):
    """Only the run's own files are protected: an extra figure beside them is fine."""
    result = CliRunner().invoke(main, ["diagnose", "run", "--plot", "run/advice.png"])
    assert result.exit_code == 0, result.output
    assert (place / "run" / "advice.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (place / "run" / "history.csv").read_text() == _history()
