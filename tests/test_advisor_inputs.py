"""Tests of the advisor's readers: every input format and bad input."""

import json

import numpy as np
import pytest

from kadvisor.advisor import diagnose
from kadvisor.advisor.inputs import read_target
from kadvisor.errors import InputError

ROWS = [(0, 0.5, 1.2, 0.55, 1.1), (1, 0.7, 0.8, 0.65, 0.9), (2, 0.8, 0.5, 0.7, 0.8)]


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return str(path)


@pytest.mark.parametrize("sep", [",", "\t", ";"])
@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r\n\r\n"])
def test_csvlogger_separators_and_line_endings(tmp_path, sep, eol):
    header = sep.join(["epoch", "acc", "loss", "val_acc", "val_loss"])
    body = eol.join(sep.join(str(v) for v in row) for row in ROWS)
    run = read_target(write(tmp_path, "log.csv", header + eol + body + eol))
    assert run.length == 3
    np.testing.assert_allclose(run.columns["val_loss"], [1.1, 0.9, 0.8])
    np.testing.assert_allclose(run.epochs, [0, 1, 2])


def test_nan_inf_and_missing_cells(tmp_path):
    text = "epoch,loss,val_loss\n0,1.0,1.1\n1,nan,\n2,inf,-inf\n"
    run = read_target(write(tmp_path, "log.csv", text))
    assert np.isnan(run.columns["loss"][1]) and np.isinf(run.columns["loss"][2])
    assert run.nonfinite == {"loss": 1, "val_loss": 2}
    assert diagnose(run).findings[0].rule == "diverged"


def test_missing_validation_and_learning_rate_columns(tmp_path):
    text = "epoch,accuracy,learning_rate,loss\n" + "\n".join(
        f"{i},{0.5 + i / 40},{1e-3},{1 / (i + 1)}" for i in range(12))
    run = read_target(write(tmp_path, "log.csv", text))
    assert "learning_rate" in run.columns and "val_loss" not in run.columns
    d = diagnose(run)
    assert any(u.rule == "overfitting" and "no validation" in u.summary for u in d.undecided)


@pytest.mark.parametrize("metric", ["acc", "accuracy", "categorical_accuracy", "auc", "dice_coef", "iou", "mae"])
def test_metric_direction(metric):
    from kadvisor.advisor.curves import higher_is_better

    assert higher_is_better(metric) == (metric != "mae")
    assert higher_is_better("val_" + metric) == (metric != "mae")


def test_history_json_and_list_of_records(tmp_path):
    hist = {"loss": [1.0, 0.5, None], "val_loss": [1.1, 0.6, 0.5], "stage": ["head", "head", "all"]}
    run = read_target(write(tmp_path, "h.json", json.dumps({"history": hist})))
    assert np.isnan(run.columns["loss"][2]) and run.text["stage"][2] == "all"
    records = [{"loss": 1.0, "val_loss": 1.2}, {"loss": 0.8, "val_loss": 1.0}]
    run = read_target(write(tmp_path, "r.json", json.dumps(records)))
    np.testing.assert_allclose(run.columns["loss"], [1.0, 0.8])


def test_history_json_with_nan_constant(tmp_path):
    run = read_target(write(tmp_path, "h.json", '{"loss": [1.0, NaN, Infinity]}'))
    assert run.nonfinite == {"loss": 1}


def test_run_directory_reads_recipe_data_metrics(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss,stage\n0,1,1,head\n1,0.5,0.6,head\n")
    (tmp_path / "recipe.toml").write_text('[model]\nweights = "none"\n')
    (tmp_path / "data.json").write_text('{"num_classes": 2}')
    (tmp_path / "metrics.json").write_text('{"best_epoch": 1}')
    run = read_target(str(tmp_path))
    assert run.recipe == {"model": {"weights": "none"}}
    assert run.data["num_classes"] == 2 and run.metrics["best_epoch"] == 1
    assert run.text["stage"] == ["head", "head"]


@pytest.mark.parametrize("content", [
    "", "\n\n\r\n", "hello", "1,2,3\n4,5,6\n", "epoch\n0\n1\n", "{not json", "[]", '{"loss": 3}',
    "<html><body>x</body></html>",
])
def test_garbage_is_a_one_line_input_error(tmp_path, content):
    with pytest.raises(InputError) as info:
        read_target(write(tmp_path, "bad.csv", content))
    assert "\n" not in str(info.value)


def test_binary_file_and_missing_path(tmp_path):
    with pytest.raises(InputError, match="binary"):
        read_target(write(tmp_path, "x.bin", b"\x00\x01\x02", "wb"))
    with pytest.raises(InputError, match="no such file"):
        read_target(str(tmp_path / "nope.csv"))
    with pytest.raises(InputError, match="not a kadvisor run directory"):
        read_target(str(tmp_path))


def test_invalid_recipe_in_run_directory(tmp_path):
    (tmp_path / "history.csv").write_text("loss\n1\n")
    (tmp_path / "recipe.toml").write_text("a = = 1")
    with pytest.raises(InputError, match="invalid TOML"):
        read_target(str(tmp_path))


def test_kadvisor_fit_history_with_stage_names_gap_and_a_cut_last_row(tmp_path):
    # epochs from 0, `stage` holds the stage NAME, early stopping ended "head" at epoch 3
    # of a planned 6 (an epoch gap), and a kill cut the last row short.
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss,lr,stage,seconds"]
    rows += [f"{e},{0.5 + e / 100},{1 - e / 50},{0.5 + e / 110},{1.05 - e / 50},0.001,head,2.5" for e in range(4)]
    rows += [f"{e},{0.6 + e / 100},{0.8 - e / 60},{0.6 + e / 110},{0.85 - e / 60},0.0001,finetune,3.1" for e in range(6, 16)]
    text = "\n".join(rows) + "\n16,0.75,0.52,0.7"
    run = read_target(write(tmp_path, "history.csv", text))
    assert run.length == 14
    assert run.text["stage"][:4] == ["head"] * 4 and run.text["stage"][-1] == "finetune"
    assert list(run.epochs[3:5]) == [3, 6]
    d = diagnose(run)
    assert d.features["judged_stage"] == "finetune" and d.features["judged_epochs"] == [6, 15]


def test_every_labelled_real_curve_reads(tmp_path):
    import os

    base = os.path.join(os.path.dirname(__file__), "data", "labelled_curves", "dev")
    from kadvisor.advisor.actions import direction

    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        run = read_target(path)
        rows = sum(1 for line in open(path, encoding="utf-8", errors="replace") if line.strip()) - 1
        # Every row is an epoch, unless a note says why some are not (appended runs).
        assert run.length == rows or run.notes, name
        assert run.length >= 3 and ("loss" in run.columns or any(c.endswith("loss") for c in run.columns))
        d = diagnose(run)
        failed = [u.summary for u in d.undecided if "rule failed" in u.summary]
        assert not failed, (name, failed)  # the engine turns a rule's crash into "cannot judge"
        ways = {direction(None, a.patch["optimizer.learning_rate"])
                for f in d.findings for a in f.actions if "optimizer.learning_rate" in a.patch}
        assert len(ways) <= 1, (name, ways)  # never both raise and lower the learning rate


def _conventions(header: list[str], rows: list[list[str]]):
    """The same log as other loggers and locales write it: (name, text)."""
    def table(head, body, sep=",", end=""):
        return "\n".join(sep.join(h) + end for h in [head, *body]) + "\n"

    def renamed(fn):
        return [fn(h) for h in header]

    yield "a separator at the end of every line", table(header, rows, end=",")
    yield "decimal commas, ';'-separated", table(header, [[c.replace(".", ",") for c in r] for r in rows], sep=";")
    yield "train/test instead of train/val", table(renamed(lambda h: "test_" + h[4:] if h.startswith("val_") else h), rows)
    yield "training_ prefixes", table(renamed(lambda h: h if h.startswith("val_") or h in ("epoch", "lr")
                                              else "training_" + h), rows)
    percent = [[str(float(c) * 100) if "acc" in h and c.strip() not in ("", "NA", "nan") else c
                for h, c in zip(header, r)] for r in rows]
    yield "accuracy in percent", table(header, percent)


def test_other_logging_conventions_give_the_same_findings(tmp_path):
    """Every comma-separated labelled curve, rewritten as other tools write logs, is
    diagnosed exactly as the original: the advice must not depend on the convention."""
    import csv
    import os

    from kadvisor.advisor.engine import diagnose as diagnose_target

    base = os.path.join(os.path.dirname(__file__), "data", "labelled_curves", "dev")
    differ = []
    for name in sorted(os.listdir(base)):
        text = open(os.path.join(base, name), encoding="utf-8-sig", newline="").read()
        lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
        if "," not in lines[0] or any(";" in ln or "\t" in ln or '"' in ln for ln in lines):
            continue
        header, *rows = list(csv.reader(lines))
        if header[0] in ("", "Unnamed: 0") or any(len(r) != len(header) for r in rows):
            continue
        expected = [f.rule for f in diagnose_target(os.path.join(base, name)).findings]
        for convention, variant in _conventions(header, rows):
            path = write(tmp_path, "log.csv", variant)
            got = [f.rule for f in diagnose_target(path).findings]
            if got != expected:
                differ.append((name, convention, expected, got))
    assert not differ, differ[:5]


def test_test_split_curves_beside_validation_ones_are_left_out(tmp_path):
    text = "epoch,loss,val_loss,test_loss\n" + "\n".join(f"{i},{1 / (i + 1)},{1 / (i + 2)},{9 - i}" for i in range(6))
    run = read_target(write(tmp_path, "log.csv", text))
    assert list(run.columns["val_loss"]) == pytest.approx([1 / (i + 2) for i in range(6)])
    assert any("test_loss" in n and "not training curves" in n for n in run.notes)
    alone = read_target(write(tmp_path, "t.csv", "epoch,loss,test_loss\n" + "\n".join(
        f"{i},{1 / (i + 1)},{9 - i}" for i in range(6))))
    assert list(alone.columns["val_loss"]) == [9 - i for i in range(6)]
    assert any("held-out" in n for n in alone.notes)


def test_decimal_commas_only_where_no_number_uses_a_point(tmp_path):
    run = read_target(write(tmp_path, "eu.csv", "epoch;loss;val_loss\n0;1,5;1,6\n1;0,9;1,0\n2;0,5;0,7\n"))
    assert list(run.columns["loss"]) == [1.5, 0.9, 0.5]
    assert any("decimal commas" in n for n in run.notes)
    # Two conventions mixed: nothing is guessed; the comma column is text, and said so.
    mixed = read_target(write(tmp_path, "mixed.csv", "epoch;loss;val_loss\n0;1,5;1.6\n1;0,9;1.0\n2;0,5;0.7\n"))
    assert "loss" not in mixed.columns and any("loss not used (not numbers)" in n for n in mixed.notes)


def test_share_metrics_in_percent_are_read_as_fractions(tmp_path):
    text = "epoch,loss,accuracy,val_loss,val_accuracy,mae\n0,1.0,50.0,1.1,45.5,3.0\n1,0.5,80,0.6,75,2.0\n"
    run = read_target(write(tmp_path, "pct.csv", text))
    assert list(run.columns["accuracy"]) == [0.5, 0.8] and list(run.columns["val_accuracy"]) == [0.455, 0.75]
    assert list(run.columns["mae"]) == [3.0, 2.0]  # an error is not a share: left as logged
    assert any("logged in percent" in n for n in run.notes)
    fractions = read_target(write(tmp_path, "f.csv", text.replace("50.0", "0.5").replace(",80,", ",0.8,")
                                  .replace("45.5", "0.455").replace(",75,", ",0.75,")))
    assert not any("percent" in n for n in fractions.notes)
