"""A run that fails inside training: one line naming the likely recipe path, the run
directory marked failed, and `evaluate` / `diagnose` of it saying why.

The failure is a real one that no up-front check can see: the image folder disappears
after the data was checked (an unmounted drive, a moved folder). The folder source
drops files TensorFlow cannot read, so the first epoch reads no batch at all.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kadvisor import rundir
from kadvisor.cli import main

RECIPE = """\
name = "vanish"
[data]
source = "folder:{root}"
image_size = [8, 8]
[model]
width = 4
[train]
epochs = 2
tensorboard = false
"""


def _images(root: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(15):
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


@pytest.fixture(scope="module")
def failed(tmp_path_factory):
    """(CLI result, run directory) of a fit whose images vanish once training is set up."""
    import kadvisor.training.fit as fit_module

    tmp = tmp_path_factory.mktemp("vanish")
    root = tmp / "photos"
    _images(root)
    (tmp / "r.toml").write_text(RECIPE.format(root=root.as_posix()))
    set_up = fit_module._set_up

    def set_up_then_unmount(*args, **kwargs):
        setup = set_up(*args, **kwargs)
        shutil.rmtree(root)
        return setup

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit_module, "_set_up", set_up_then_unmount)
        result = CliRunner().invoke(main, ["fit", str(tmp / "r.toml"), "--out", str(tmp / "runs"), "--quiet"])
    (run,) = (tmp / "runs").iterdir()
    return result, run


def _one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    return lines[0][len("Error: "):]


def test_a_failure_inside_training_is_one_line_naming_the_recipe_path(failed):
    result, _ = failed
    message = _one_error_line(result)
    assert re.fullmatch(r"training failed: epoch 1 trained on no batch; likely data\.source: .*; "
                        r"expected every epoch to read at least one batch", message), message


def test_the_run_directory_is_marked_failed_with_the_error_and_no_epoch(failed):
    result, run = failed
    metrics = json.loads((run / rundir.METRICS).read_text())
    assert metrics["status"] == "failed"
    assert metrics["error"] == _one_error_line(result)
    assert not (run / rundir.MODEL).exists()
    history = run / rundir.HISTORY
    assert not history.exists() or rundir.read_history_rows(history) == []


def test_evaluate_of_the_failed_run_says_why(failed):
    result, run = failed
    message = _one_error_line(CliRunner().invoke(main, ["evaluate", str(run)]))
    assert message == (f"{run}: the run failed before its first epoch, so it has no model to evaluate: "
                       f"{json.loads((run / rundir.METRICS).read_text())['error']}")


def test_diagnose_of_the_failed_run_says_why(failed):
    _, run = failed
    message = _one_error_line(CliRunner().invoke(main, ["diagnose", str(run)]))
    assert "the run stopped before its first epoch ended (status 'failed': training failed: epoch 1" in message
    assert not (run / rundir.DIAGNOSIS).exists()


def test_a_tensorflow_error_becomes_its_message_with_the_detail_chained(tmp_path):
    """A real TensorFlow error from fit (a zero-sized image reaching resize): the line
    holds TensorFlow's message, not its framing ("Graph execution error",
    "<stack traces unavailable>"); the original error is chained for --debug."""
    import keras
    import tensorflow as tf

    from kadvisor.training.fit import TrainingError, _one_line

    images = tf.data.Dataset.from_tensor_slices((np.zeros((4, 0, 8, 1), np.uint8), np.zeros(4, int)))
    batches = images.map(lambda x, y: (tf.image.resize(x, [8, 8], antialias=True), y)).batch(2)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(TrainingError) as caught, _one_line(tmp_path):
        model.fit(batches, shuffle=False, verbose=0)
    message = str(caught.value)
    assert message.startswith("training failed (InvalidArgumentError: input image must be of non-zero size); "
                              "likely "), message
    assert f"{tmp_path} is marked failed" in message and "\n" not in message
    assert isinstance(caught.value.__cause__, tf.errors.InvalidArgumentError)
