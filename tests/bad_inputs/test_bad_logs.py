"""`kadvisor diagnose` on logs that are not logs, or are messy real ones.

Grouped by the mechanism that handles them. A refused input gets exactly one line,
``Error: …``, naming the file and what was found and expected, exit 1, no traceback;
a messy real log is read (exit 0) and the report says how. In every case no file
other than the ones diagnose may write (``diagnosis.json`` and the TensorBoard text
summary of a run directory) changes.
"""

import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kadvisor.advisor.command import diagnose_command
from kadvisor.cli import main
from kadvisor.errors import InputError


def snapshot(folder):
    """Every file under ``folder`` → (bytes, mtime), to prove nothing was touched."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as fh:
                    out[os.path.relpath(path, folder)] = (fh.read(), os.stat(path).st_mtime_ns)
    return out


def run_cli(tmp_path, *args):
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["diagnose", *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    changed = {k for k in set(before) | set(snapshot(tmp_path)) if before.get(k) != snapshot(tmp_path).get(k)}
    assert not {c for c in changed if not c.endswith("diagnosis.json")}, changed
    return result


def refused(tmp_path, target, pattern, *extra):
    result = run_cli(tmp_path, target, *extra)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def read_ok(tmp_path, target, *extra):
    result = run_cli(tmp_path, target, "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


# --- A log needs a recognisable loss or metric column (readers.roles, readers.run) -------

STATUS_LIKE = "Name:\tpython3\nUmask:\t0022\nState:\tR (running)\nTgid:\t4242\nPid:\t4242\n"


@pytest.mark.parametrize("name,text,pattern", [
    ("status", STATUS_LIKE, r"not a training log: found columns 'name:', 'python3'; expected a loss or metric"),
    ("kv.txt", "lr:\t0.001\nbatch:\t32\nepochs:\t10\nseed:\t1\n", r"first row must be a header of column names, got numbers"),
    ("lists.json", '{"loss": [[0.1, 0.2], [0.3]]}', r"'loss' holds lists \(e\.g\. \[0\.1, 0\.2\]\); expected one number per epoch"),
    ("dicts.json", '{"loss": [{"a": 1}]}', r"'loss' holds dicts .*expected one number per epoch"),
    ("nulls.json", '{"loss": [null, null, null], "val_loss": [null]}', r"column 'loss' has no values \(all empty or null\)"),
    ("abc.json", '{"loss": "abc"}', r"'loss' is \"abc\"; expected a list of per-epoch numbers"),
    ("words.csv", "epoch,loss\n0,abc\n1,def\n", r"column 'loss' holds text, not numbers \(got 'abc'\)"),
    ("no_metric.csv", "epoch,pid,threads\n0,1,2\n1,3,4\n", r"found columns 'epoch', 'pid', 'threads'; expected a loss or metric column"),
])
def test_a_table_without_a_loss_or_metric_is_refused(tmp_path, name, text, pattern):
    refused(tmp_path, write(tmp_path, name, text), pattern)


def test_proc_self_status_is_refused(tmp_path):
    refused(tmp_path, "/proc/self/status", r"/proc/self/status: not a training log: found columns 'name:'")


# --- Column names are mapped onto the advisor's (readers.roles) -------------------------

def test_upper_case_header_is_read(tmp_path):
    rows = "".join(f"{e},{1 / (e + 1)},{1.2 / (e + 1)}\n" for e in range(8))
    report = read_ok(tmp_path, write(tmp_path, "up.csv", "Epoch,Loss,Val_Loss\n" + rows))
    assert report["summary"]["epochs"] == 8 and report["summary"]["val_loss_best"] == pytest.approx(0.15, rel=1e-4)
    assert any("case-insensitively" in n for n in report["input"]["notes"])


def test_columns_option_names_a_missing_column(tmp_path):
    path = write(tmp_path, "l.csv", "epoch,loss\n0,1\n1,0.5\n")
    refused(tmp_path, path, r"--columns val_loss=valid/loss: no column 'valid/loss' in the log \(columns: epoch, loss\)",
            "--columns", "val_loss=valid/loss")
    refused(tmp_path, path, r"--columns: expected ROLE=NAME items", "--columns", "loss")
    refused(tmp_path, path, r"--columns: loss is given twice \('loss' and 'epoch'\); expected each role once",
            "--columns", "loss=loss,loss=epoch")


# --- CSV cells are parsed by the csv module (readers.csvlog) ------------------------------

def test_vector_cells_are_averaged_not_lost(tmp_path):
    rows = "".join(f'{e},{1 / (e + 1)},"[{0.1 * e}, {0.2 * e}]",{1.1 / (e + 1)}\n' for e in range(6))
    report = read_ok(tmp_path, write(tmp_path, "v.csv", "epoch,loss,f1,val_loss\n" + rows))
    assert report["summary"]["loss_last"] == pytest.approx(1 / 6, rel=1e-4) and report["summary"]["val_loss_last"] == pytest.approx(1.1 / 6, rel=1e-4)
    assert any("vector cells in f1" in n for n in report["input"]["notes"])


def test_quoted_stage_name_with_a_comma_is_one_cell(tmp_path):
    rows = "".join(f'{e},{1 / (e + 1)},{1.1 / (e + 1)},"head, frozen"\n' for e in range(3))
    rows += "".join(f'{e},{0.3 / e},{0.35 / e},"all, unfrozen"\n' for e in range(3, 7))
    report = read_ok(tmp_path, write(tmp_path, "s.csv", "epoch,loss,val_loss,stage\n" + rows))
    assert report["summary"]["judged_stage"] == "all, unfrozen" and report["summary"]["epochs"] == 7


def test_duplicate_column_names_keep_the_first(tmp_path):
    rows = "".join(f"{e},{1 / (e + 1)},{9},{1.1 / (e + 1)}\n" for e in range(5))
    report = read_ok(tmp_path, write(tmp_path, "d.csv", "epoch,loss,loss,val_loss\n" + rows))
    assert report["summary"]["epochs"] == 5 and report["summary"]["loss_last"] == pytest.approx(0.2, rel=1e-4)
    assert any("'loss' appears twice" in n for n in report["input"]["notes"])


def test_repeated_header_line_does_not_shift_epochs(tmp_path):
    head = "epoch,loss,val_loss\n"
    text = head + "0,1.0,1.1\n1,0.8,0.9\n" + head + "2,0.6,0.7\n3,0.5,0.6\n"
    report = read_ok(tmp_path, write(tmp_path, "r.csv", text))
    assert report["summary"]["epochs"] == 4 and report["summary"]["val_loss_best_epoch"] == 3
    assert any("header line is repeated" in n for n in report["input"]["notes"])


def test_a_dropped_text_column_is_noted(tmp_path):
    rows = "".join(f"{e},{1 / (e + 1)},{1.1 / (e + 1)},host{e}\n" for e in range(4))
    report = read_ok(tmp_path, write(tmp_path, "t.csv", "epoch,loss,val_loss,machine\n" + rows))
    assert any("text column machine not used" in n for n in report["input"]["notes"])


# --- Epoch order, restarts and duplicates (readers.align.order_rows) ----------------------

def test_reversed_rows_are_put_in_order(tmp_path):
    rows = [f"{e},{1 / (e + 1)},{1.1 / (e + 1)}" for e in range(10)]
    report = read_ok(tmp_path, write(tmp_path, "rev.csv", "epoch,loss,val_loss\n" + "\n".join(reversed(rows)) + "\n"))
    assert "diverged" not in [f["rule"] for f in report["findings"]]
    assert report["summary"]["val_loss_best_epoch"] == 9
    assert any("reverse epoch order" in n for n in report["input"]["notes"])


def test_overlapping_epochs_after_an_append_restart_are_counted_once(tmp_path):
    first = [f"{e},{1 / (e + 1)},{1.1 / (e + 1)}" for e in range(6)]
    again = [f"{e},{0.9 / (e + 1)},{1.0 / (e + 1)}" for e in range(4, 9)]  # resumed at epoch 4
    report = read_ok(tmp_path, write(tmp_path, "o.csv", "epoch,loss,val_loss\n" + "\n".join(first + again) + "\n"))
    assert report["summary"]["epochs"] == 9 and report["summary"]["loss_last"] == pytest.approx(0.1, rel=1e-4)
    assert any("2 epochs were logged twice" in n for n in report["input"]["notes"])


def test_appended_runs_diagnose_the_last_and_say_so(tmp_path):
    one = [f"{e},{2 / (e + 1)},{2.1 / (e + 1)}" for e in range(5)]
    two = [f"{e},{3 / (e + 1)},{3.3 / (e + 1)}" for e in range(7)]  # a new run: loss back up at epoch 0
    report = read_ok(tmp_path, write(tmp_path, "a.csv", "epoch,loss,val_loss\n" + "\n".join(one + two) + "\n"))
    assert report["summary"]["epochs"] == 7
    assert any("2 runs appended in one file; diagnosing the last (7 rows)" in n for n in report["input"]["notes"])


# --- Files are read safely (readers.safeio) -----------------------------------------------

def test_devices_are_refused_without_reading(tmp_path):
    refused(tmp_path, "/dev/urandom", r"/dev/urandom: a character device, not a log file")
    # The real command, with a timeout: /dev/zero once grew memory without bound.
    out = subprocess.run([sys.executable, "-m", "kadvisor.cli", "diagnose", "/dev/zero"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.strip() == (
        "Error: /dev/zero: a character device, not a log file; expected a regular file "
        "(CSV, JSON or TensorBoard events)")


def test_named_pipe_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    out = subprocess.run([sys.executable, "-m", "kadvisor.cli", "diagnose", str(tmp_path / "pipe")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "a named pipe, not a log file" in out.stderr and "Traceback" not in out.stderr


def test_symlink_loop_and_dangling_link_are_named(tmp_path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    refused(tmp_path, tmp_path / "a", r"a: symbolic link loop")
    os.symlink(tmp_path / "gone.csv", tmp_path / "dangling")
    refused(tmp_path, tmp_path / "dangling", r"dangling: broken symbolic link \(points to '.*gone.csv'")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig"])
def test_utf16_and_bom_text_is_decoded(tmp_path, encoding):
    text = "epoch,loss,val_loss\n" + "".join(f"{e},{1 / (e + 1)},{1.1 / (e + 1)}\n" for e in range(5))
    report = read_ok(tmp_path, write(tmp_path, "u.csv", text, encoding))
    assert report["summary"]["epochs"] == 5


def test_binary_is_named_as_binary(tmp_path):
    refused(tmp_path, write(tmp_path, "x.bin", bytes(range(256)) * 4), r"x\.bin: binary file \(not text\)")


# --- K-fold entries are confined to the parent (advisor.kfold) ----------------------------

def _fold(path):
    path.mkdir(parents=True)
    (path / "history.csv").write_text("epoch,loss,val_loss\n" + "".join(f"{e},{1 / (e + 1)},{1.1 / (e + 1)}\n" for e in range(4)))


@pytest.mark.parametrize("entry", ["ABS", "../outside", "fold-1/../../outside", "link"])
def test_kfold_entries_outside_the_parent_are_refused(tmp_path, entry):
    parent, outside = tmp_path / "cv", tmp_path / "outside"
    _fold(outside)
    _fold(parent / "fold-1")
    os.symlink(outside, parent / "link")
    name = str(outside) if entry == "ABS" else entry
    (parent / "kfold.json").write_text(json.dumps({"folds": 2, "runs": ["fold-1", name]}))
    refused(tmp_path, parent, r"kfold\.json: run entry '.*' (is not a fold directory name inside|resolves outside)")
    assert not (outside / "diagnosis.json").exists()


# --- A run that failed before its first epoch (readers.rundir) ----------------------------

def test_failed_run_directory_says_why(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text('name = "x"\n')
    (run / "metrics.json").write_text(json.dumps({"status": "failed", "error": "image_size too large for memory"}))
    refused(tmp_path, run, r"run: the run stopped before its first epoch ended \(status 'failed': image_size too large")


# --- Property: nothing without a loss/metric column is ever called healthy ---------------

_WORDS = st.sampled_from(["epoch", "step", "pid", "name", "time", "lr", "batch", "seed", "state", "x", "Name:", "uid"])
_CELLS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text("abc xyz:-_", max_size=6),
                   st.integers(-5, 5).map(str), st.just(""))


@st.composite
def non_logs(draw):
    header = draw(st.lists(_WORDS, min_size=1, max_size=5))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    rows = draw(st.lists(st.lists(_CELLS, min_size=len(header), max_size=len(header)), max_size=8))
    if draw(st.booleans()):
        return json.dumps({h: [r[i] for r in rows] for i, h in enumerate(header)})
    return sep.join(header) + draw(st.sampled_from(["\n", "\r\n"])) + "\n".join(sep.join(r) for r in rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=non_logs(), as_run_dir=st.booleans())
def test_property_no_loss_or_metric_column_is_never_healthy_and_touches_nothing(tmp_path_factory, text, as_run_dir):
    folder = tmp_path_factory.mktemp("p")
    (folder / "keep.txt").write_text("user file")
    target = folder / ("history.csv" if as_run_dir else "log.csv")
    target.write_text(text)
    before = snapshot(folder)
    out = []
    with pytest.raises(InputError):
        diagnose_command(str(folder if as_run_dir else target), echo=out.append)
    assert not out and snapshot(folder) == before


@pytest.mark.parametrize("epochs", [1, 2])
def test_a_log_too_short_for_every_rule_is_not_called_healthy(tmp_path, epochs):
    log = tmp_path / "short.csv"
    log.write_text("epoch,loss,val_loss\n" + "".join(f"{e},{1 - e / 10},{1.1 - e / 10}\n" for e in range(epochs)))
    result = run_cli(tmp_path, log)
    assert result.exit_code == 0, result.output
    assert "healthy" not in result.output
    assert ("too little to judge: every curve rule needs more epochs or a validation curve (see 'cannot "
            "judge' below) — this is not a clean bill of health.") in result.output
    report = read_ok(tmp_path, log)
    assert report["verdict"] == "too little to judge" and report["healthy"] is False
