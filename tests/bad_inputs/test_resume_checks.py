"""`fit --resume` refuses a run directory whose files no longer belong together.

One interrupted run is made (Ctrl-C in its fourth epoch), then each test copies it and
damages the copy the way a user could: another recipe copied in, data.json edited, a
checkpoint from another run. Resume must refuse in one line naming what differs, before
anything is trained or written.
"""

import hashlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_resume import interrupted_run  # tests/ is on sys.path (its conftest.py)

from kadvisor import rundir
from kadvisor.cli import main
from kadvisor.training.checkpoint import checkpoint_dir, read_state


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    run_dir = interrupted_run(tmp_path_factory.mktemp("interrupted"))
    assert read_state(run_dir).epoch == 2
    return run_dir


def _digests(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _copy(interrupted: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(interrupted, tmp_path / interrupted.name))


def _other_recipe(run_dir: Path) -> None:
    text = (run_dir / rundir.RECIPE).read_text()
    assert "width = 4" in text
    (run_dir / rundir.RECIPE).write_text(text.replace("width = 4", "width = 16", 1))


def _edited_data(run_dir: Path) -> None:
    text = (run_dir / rundir.DATA).read_text()
    assert '"num_classes": 10' in text
    (run_dir / rundir.DATA).write_text(text.replace('"num_classes": 10', '"num_classes": 3', 1))


def _foreign_checkpoint(run_dir: Path) -> None:
    state = checkpoint_dir(run_dir) / "state.json"
    text = state.read_text()
    run_id = read_state(run_dir).run_id
    assert run_id and run_id in text
    state.write_text(text.replace(run_id, "0" * len(run_id)))


@pytest.mark.parametrize("damage, names", [
    (_other_recipe, r"recipe\.toml has model\.width = 16 but the run was created with 4"),
    (_edited_data, r"data\.json has num_classes = 3 but data\.json at creation had 10"),
    (_foreign_checkpoint, r"checkpoint/state\.json belongs to another run"),
])
def test_resume_refuses_files_that_do_not_belong_together(interrupted, tmp_path, damage, names):
    import re

    run_dir = _copy(interrupted, tmp_path)
    damage(run_dir)
    before = _digests(run_dir)
    result = CliRunner().invoke(main, ["fit", "--resume", str(run_dir), "--quiet"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith(f"Error: {run_dir}: cannot resume: "), lines[0]
    assert re.search(names, lines[0]), lines[0]
    assert lines[0].endswith("expected the files this run was created with (start a new run with "
                             "kadvisor fit instead)")
    assert _digests(run_dir) == before  # nothing trained, nothing written


def test_an_untouched_copy_resumes(interrupted, tmp_path):
    """The control: the same copy, undamaged, resumes and finishes."""
    run_dir = _copy(interrupted, tmp_path)
    result = CliRunner().invoke(main, ["fit", "--resume", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in rundir.read_history_rows(run_dir / rundir.HISTORY)] == ["0", "1", "2", "3", "4"]
