"""Tests of live advice (AdvisorCallback) and of the lazy, TensorFlow-free import."""

import subprocess
import sys


def test_import_advisor_does_not_import_tensorflow_or_keras():
    code = ("import sys, kadvisor.advisor, kadvisor.advisor.command; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


class FakeModel:
    stop_training = False


def test_callback_warns_once_and_stops_on_request():
    from kadvisor.advisor import AdvisorCallback

    lines = []
    cb = AdvisorCallback(stop_on=["diverged"], printer=lines.append)
    cb.set_model(FakeModel()) if hasattr(cb, "set_model") else None
    cb._model = FakeModel()
    losses = [1.0, 0.8, 0.7, float("nan"), float("nan")]
    for epoch, loss in enumerate(losses):
        cb.on_epoch_end(epoch, {"loss": loss, "val_loss": loss})
    warnings = [l for l in lines if l.startswith("advisor: diverged")]
    assert len(warnings) == 1 and "epoch 3" in warnings[0]
    assert cb.model.stop_training is True


def test_callback_does_not_stop_on_unlisted_findings():
    from kadvisor.advisor import AdvisorCallback

    lines = []
    cb = AdvisorCallback(printer=lines.append)
    cb._model = FakeModel()
    for epoch in range(4):
        cb.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": float("inf") if epoch == 3 else 1.0})
    assert any("diverged" in l for l in lines)
    assert cb.model.stop_training is False


OVERFIT = """
name = "overfit"
[data]
source = "sklearn:digits"
image_size = [8, 8]
channels = 1
subsample = 0.1
[data.augment]
translate = 0.0
rotation = 0.0
zoom = 0.0
[model]
width = 16
dropout = 0.0
[optimizer]
weight_decay = 0.0
learning_rate = 3e-3
[schedule]
name = "constant"
[loss]
label_smoothing = 0.0
[train]
epochs = 80
batch_size = 16
early_stopping = 0     # nothing but the advisor may stop this run
tensorboard = false
[advisor]
stop_on = ["overfitting"]
"""


def test_stop_on_stops_a_real_fit_that_overfits(tmp_path):
    """144 training images, no regulariser, a constant rate: validation loss turns up
    within ~20 epochs; advisor.stop_on ends the run there instead of at epoch 80."""
    import json

    import kadvisor
    from kadvisor import rundir
    from kadvisor.recipe import recipe_from_text

    lines = []
    run = kadvisor.fit(recipe_from_text(OVERFIT), tmp_path, printer=lines.append)
    rows = rundir.read_history_rows(run.path / rundir.HISTORY)
    fired = [line for line in lines if line.startswith("advisor: overfitting at epoch")]
    assert fired and any("stopping training (overfitting is in advisor.stop_on)" in line for line in lines), lines
    assert len(rows) < 80, len(rows)
    metrics = json.loads((run.path / rundir.METRICS).read_text())
    assert metrics["status"] == "finished" and (run.path / rundir.MODEL).exists()
