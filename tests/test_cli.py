"""The command line: exit codes, one-line errors, and a light `--help`."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import kadvisor
from kadvisor.cli import main
from kadvisor.native_logs import is_noise
from kadvisor.recipe import load_recipe, recipe_from_text

TINY = """
name = "cli"
[data]
source = "sklearn:digits"
image_size = [8, 8]
channels = 1
[model]
width = 4
[train]
epochs = 3
batch_size = 128
"""


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and kadvisor.__version__ in result.output


def test_help_and_diagnose_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from kadvisor.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_diagnose_of_a_csv_log_and_of_tensorboard_events_imports_no_tensorflow(tmp_path):
    """The whole command, in a fresh interpreter: reading, rules, report, diagnosis files."""
    from tensorboardX import SummaryWriter

    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss\n" + "".join(f"{e},{1 / (e + 1)},{1.2 / (e + 1)}\n" for e in range(12)))
    events = tmp_path / "events"
    with SummaryWriter(str(events)) as writer:
        for e in range(12):
            writer.add_scalar("loss/train", 1 / (e + 1), e)
            writer.add_scalar("loss/val", 1.2 / (e + 1), e)
    code = (
        "import sys\n"
        "from kadvisor.cli import main\n"
        "for target in sys.argv[1:]:\n"
        "    try:\n"
        "        main(['diagnose', target])\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, e.code\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(log), str(events)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("12 epochs") == 2, result.stdout
    assert "HEAVY []" in result.stdout


def test_recipe_check_accepts_a_good_recipe(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(TINY)
    result = invoke("recipe", "check", str(path))
    assert result.exit_code == 0 and "ok" in result.output


def test_bad_recipe_is_one_line_with_file_line_and_exit_1(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(TINY.replace("epochs = 3", "epochs = -3"))
    result = invoke("recipe", "check", str(path))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {path}:10: train.epochs must be an integer > 0, got -3"
    assert "Traceback" not in result.output


def test_missing_recipe_file_exit_1(tmp_path):
    result = invoke("fit", str(tmp_path / "nope.toml"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "nope.toml" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_usage_errors_exit_2():
    assert invoke("fit").exit_code == 2
    assert invoke("fit", "x.toml", "--epochs", "0").exit_code == 2
    assert invoke("no-such-command").exit_code == 2


def test_set_with_a_typo_gets_did_you_mean(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(TINY)
    result = invoke("fit", str(path), "--set", "optimizer.lerning_rate=1e-3")
    assert result.exit_code == 1
    assert "did you mean 'optimizer.learning_rate'?" in result.output


def test_recipe_show_prints_the_resolved_recipe_with_overrides(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(TINY)
    result = invoke("recipe", "show", str(path), "--set", "optimizer.learning_rate=0.02")
    assert result.exit_code == 0
    shown = recipe_from_text(result.output)
    assert shown.optimizer.learning_rate == 0.02
    assert shown.data.image_size == [8, 8]
    assert "# base learning rate" in result.output  # help text as comments


def test_fit_trains_and_prints_the_run_directory(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(TINY)
    result = invoke("fit", str(path), "--epochs", "1", "--quiet", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    run_dir = Path(result.output.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "runs"
    assert load_recipe(run_dir / "recipe.toml").train.epochs == 1  # --epochs applied
    assert (run_dir / "model.keras").exists()


def test_init_writes_a_starter_recipe_for_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(
                tmp_path / "images" / name / f"{i}.png")
    out = tmp_path / "recipe.toml"
    result = invoke("init", str(tmp_path / "images"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "2 classes, 6 images" in result.output
    recipe = load_recipe(out)
    assert recipe.data.source == f"folder:{(tmp_path / 'images').as_posix()}"
    assert [s.trainable for s in recipe.stages] == ["head", "all"]
    again = invoke("init", str(tmp_path / "images"), "-o", str(out))
    assert again.exit_code == 1 and "--force" in again.output


def test_init_refuses_a_folder_without_classes(tmp_path):
    result = invoke("init", str(tmp_path))
    assert result.exit_code == 1 and "class sub-folders" in result.output


@pytest.mark.parametrize("line, noise", [
    ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR", True),
    ("I0000 00:00:1795457400.336821    4759 port.cc:153] oneDNN custom operations are on.", True),
    ("E0000 00:00:1795457404.019510    4759 cuda_platform.cc:52] failed call to cuInit: INTERNAL", True),
    ("E0000 00:00:1795457404.019510    4759 some_op.cc:1] out of memory", False),
    ("Error: something the user must see", False),
])
def test_only_known_start_up_noise_is_filtered(line, noise):
    assert is_noise(line) is noise
