"""One recipe validation (kadvisor/recipe: schema + checks) for `recipe check`, `fit` and `tune`.

Each recipe below was once accepted by `recipe check` and then rejected (or mishandled)
by `fit` or `tune`. Now every one of the three commands refuses it with the same line —
file:line, the field, the value and what was expected — before any work: no run or
tuning directory is created.
"""

import re

import pytest
from click.testing import CliRunner

from kadvisor.cli import main
from kadvisor.recipe import load_recipe
from test_bad_inputs import GOOD

# test_bad_inputs.GOOD with a seed line and a search space.
BASE = GOOD.replace('name = "bad"\n', 'name = "v"\nseed = 1\n') + (
    '[search.space]\n"optimizer.learning_rate" = { log_uniform = [1e-4, 1e-2] }\n')

# (id, (old, new) replacement in BASE, the message after "Error: r.toml:LINE: ")
CASES = [
    ("seed-2-to-the-32", ("seed = 1", "seed = 4294967296"), 2,
     r"seed must be an integer in \[0, 4294967295\] \(2\*\*32 - 1\), got 4294967296"),
    ("negative-seed", ("seed = 1", "seed = -1"), 2, r"seed must be an integer in \[0, 4294967295\] .*, got -1"),
    ("name-with-slash", ('name = "v"', 'name = "a/b"'), 1,
     r"name must be a non-empty string without '/', '\\' or a leading '\.', got 'a/b'"),
    ("name-dot-dot", ('name = "v"', 'name = "../up"'), 1,
     r"name must be a non-empty string without '/', '\\' or a leading '\.', got '\.\./up'"),
    ("subsample-zero", ("channels = 1", "channels = 1\nsubsample = 0"), 7,
     r"data\.subsample must be a float in \(0, 1\], got 0"),
    ("kfold-one", ("[train]", "[validation]\nkfold = 1\n[train]"), 10,
     r"validation\.kfold must be an integer 0 \(off\) or >= 2, got 1"),
    ("monitor-not-logged", ("epochs = 1", 'epochs = 1\nmonitor = "val_foo"'), 11,
     r"train\.monitor must be a metric the model logs, one of 'loss', 'accuracy', 'val_loss', "
     r"'val_accuracy', got 'val_foo'"),
    ("objective-not-logged", ("[search.space]", '[search]\nobjective = "val_f1"\n[search.space]'), 12,
     r"search\.objective must be a metric the model logs, one of .*, got 'val_f1'"),
    ("image-size-beyond-memory", ("image_size = [8, 8]", "image_size = [100000, 100000]"), 5,
     r"data\.image_size \[100000, 100000\] with train\.batch_size 32 needs at least [\d.]+ TiB for one batch "
     r"\(input \+ first feature map, float32\) but this machine has [\d.]+ [KMGT]iB of memory; expected a "
     r"smaller data\.image_size or train\.batch_size"),
    ("empty-search-space", ('"optimizer.learning_rate" = { log_uniform = [1e-4, 1e-2] }\n', ""), 11,
     r"\[search\.space\] must name at least one field to search, e\.g\. .*; got an empty table"),
    ("hyperband-epochs-in-space", ('"optimizer.learning_rate"', '"train.epochs" = { int = [1, 3] }\n"optimizer.learning_rate"'), 12,
     r"search\.space\.train\.epochs: Hyperband sets each trial's epochs itself .*"),
]


def _commands(path: str, tmp) -> dict[str, list[str]]:
    return {
        "check": ["recipe", "check", path],
        "fit": ["fit", path, "--out", str(tmp / "runs")],
        "tune": ["tune", path, "--out", str(tmp / "tuning")],
    }


@pytest.mark.parametrize("change, line, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_fit_and_tune_refuse_the_same_recipe_with_the_same_line(change, line, message, tmp_path):
    assert change[0] in BASE
    path = tmp_path / "r.toml"
    path.write_text(BASE.replace(*change, 1))
    lines = {}
    for command, args in _commands(str(path), tmp_path).items():
        result = CliRunner().invoke(main, args)
        output = result.output.strip()
        assert result.exit_code == 1, (command, output)
        assert isinstance(result.exception, SystemExit) and "Traceback" not in output, (command, output)
        assert len(output.splitlines()) == 1, (command, output)
        lines[command] = output
    assert len(set(lines.values())) == 1, lines
    assert re.fullmatch(rf"Error: {re.escape(str(path))}:{line}: {message}", lines["check"]), lines["check"]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tuning").exists()


def test_the_same_limits_hold_for_set_overrides(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(BASE)
    result = CliRunner().invoke(main, ["fit", str(path), "--set", "seed=4294967296", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: --set seed=4294967296: seed must be an integer in [0, 4294967295] "
                                     "(2**32 - 1), got 4294967296")
    assert not (tmp_path / "runs").exists()


def test_the_largest_seed_and_a_plain_space_default_are_accepted(tmp_path):
    """The limits are not too tight: 2**32 - 1 is a valid seed; `space = {}` (as
    `recipe show` writes the default) is "no search", not an empty [search.space]."""
    path = tmp_path / "r.toml"
    path.write_text(BASE.replace("seed = 1", "seed = 4294967295").replace(
        '[search.space]\n"optimizer.learning_rate" = { log_uniform = [1e-4, 1e-2] }\n', "[search]\nspace = {}\n"))
    assert load_recipe(path).seed == 2**32 - 1


def test_a_utf8_byte_order_mark_is_not_an_error(tmp_path):
    path = tmp_path / "r.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    result = CliRunner().invoke(main, ["recipe", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert load_recipe(path).name == "v"
