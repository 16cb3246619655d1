"""Bad input gets one line, `Error: …`, naming what is wrong, and a non-zero exit.

Every case builds its bad input in a temporary folder, runs the real command line,
and asserts the exit code, that the output is exactly one line (no traceback), and
that the line names the file or field, the value received and what was expected.
"""

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kadvisor.cli import main

GOOD = """\
name = "bad"
[data]
source = "sklearn:digits"
image_size = [8, 8]
channels = 1
[model]
width = 4
[train]
epochs = 1
"""


@dataclass
class Case:
    """One bad input: ``make(tmp)`` writes files and returns the command's arguments."""

    id: str
    make: Callable[[Path], list[str]]
    message: str  # regex the whole line after "Error: " must match
    exit_code: int = 1


def recipe(text: str, name: str = "r.toml"):
    def make(tmp: Path) -> list[str]:
        (tmp / name).write_text(text.replace("TMP", tmp.as_posix()))
        return ["fit", str(tmp / name)]

    return make


def with_data(lines: str):
    return recipe(GOOD.replace('source = "sklearn:digits"', lines))


def images(tmp: Path, per_class: dict[str, int], corrupt: dict[str, int] | None = None) -> Path:
    rng = np.random.default_rng(0)
    root = tmp / "photos"
    root.mkdir()
    for name, count in per_class.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    for name, count in (corrupt or {}).items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"bad{i}.jpg").write_bytes(b"" if i % 2 else b"\xff\xd8 not a jpeg")
    return root


def folder_case(per_class, corrupt=None):
    def make(tmp: Path) -> list[str]:
        images(tmp, per_class, corrupt)
        return with_data('source = "folder:TMP/photos"')(tmp)

    return make


def npz_case(**arrays):
    def make(tmp: Path) -> list[str]:
        np.savez(tmp / "d.npz", **arrays)
        return with_data('source = "npz:TMP/d.npz"')(tmp)

    return make


def weights_case(kind: str):
    def make(tmp: Path) -> list[str]:
        if kind == "mismatch":
            import keras

            other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="other")])
            other.save_weights(tmp / "other.weights.h5")
            path = tmp / "other.weights.h5"
        else:
            path = tmp / "missing.weights.h5"
        return recipe(GOOD.replace("width = 4", f'width = 4\nweights = "{path.as_posix()}"'))(tmp)

    return make


def diagnose_file(content: bytes | str, name: str = "log.csv"):
    def make(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return ["diagnose", str(path)]

    return make


def run_dir_case(mutate: Callable[[Path], None], command: str = "resume"):
    """A copy of one real finished run directory, damaged by ``mutate``."""

    def make(tmp: Path) -> list[str]:
        run = tmp / "run"
        shutil.copytree(FINISHED["path"], run)
        mutate(run)
        if command == "resume":
            return ["fit", "--resume", str(run)]
        return [command, str(run)]

    return make


def set_status(run: Path, status: str) -> None:
    (run / "metrics.json").write_text(json.dumps({"status": status}))


FINISHED: dict = {}

CASES = [
    # --- recipe files -------------------------------------------------------------
    Case("toml-syntax", recipe(GOOD.replace('name = "bad"', 'name = "bad')),
         r".*r\.toml:1: invalid TOML: .*"),
    Case("toml-duplicate-key", recipe(GOOD + "epochs = 2\n"), r".*r\.toml:10: invalid TOML: .*"),
    Case("not-utf8", recipe(GOOD), r".*r\.toml: cannot read recipe: not UTF-8 text.*"),
    Case("wrong-type-float", recipe(GOOD + '[optimizer]\nlearning_rate = "fast"\n'),
         r".*r\.toml:11: optimizer\.learning_rate must be a float > 0, got 'fast'"),
    Case("wrong-type-bool-for-int", recipe(GOOD.replace("epochs = 1", "epochs = true")),
         r".*r\.toml:9: train\.epochs must be an integer > 0, got true"),
    Case("impossible-epochs", recipe(GOOD.replace("epochs = 1", "epochs = 0")),
         r".*r\.toml:9: train\.epochs must be an integer > 0, got 0"),
    Case("negative-lr", recipe(GOOD + "[optimizer]\nlearning_rate = -1\n"),
         r".*r\.toml:11: optimizer\.learning_rate must be a float > 0, got -1"),
    Case("dropout-one", recipe(GOOD.replace("width = 4", "width = 4\ndropout = 1.0")),
         r".*r\.toml:8: model\.dropout must be a float in \[0, 1\), got 1\.0"),
    Case("image-size-length", recipe(GOOD.replace("image_size = [8, 8]", "image_size = [8]")),
         r".*r\.toml:4: data\.image_size must be a list of integers of length 2 and each > 0, got \[8\]"),
    Case("unknown-key", recipe(GOOD + "[optimizer]\nlerning_rate = 0.1\n"),
         r".*r\.toml:11: unknown field 'optimizer\.lerning_rate' — did you mean 'optimizer\.learning_rate'\?"),
    Case("unknown-section", recipe(GOOD + "[optimiser]\nname = 'sgd'\n"),
         r".*r\.toml:11: unknown field 'optimiser\.name' — did you mean 'optimizer\.name'\?"),
    Case("bad-choice", recipe(GOOD + "[optimizer]\nname = 'adamm'\n"),
         r".*r\.toml:11: optimizer\.name must be one of .*got 'adamm' — did you mean 'adam'\?"),
    Case("unknown-backbone", recipe(GOOD.replace("width = 4", 'width = 4\nbackbone = "resnet5"')),
         r".*r\.toml:8: model\.backbone must be a registered backbone name, got 'resnet5' — did you mean 'resnet50'\?.*"),
    Case("held-out-too-big", recipe(GOOD.replace("channels = 1", "channels = 1\nval_fraction = 0.5\ntest_fraction = 0.5")),
         r".*r\.toml:6: data\.val_fraction \+ data\.test_fraction must leave at least 10% for training, got 0\.5 \+ 0\.5"),
    Case("steps-not-increasing", recipe(GOOD + "[schedule]\nname = 'multistep'\nsteps = [10, 5]\n"),
         r".*r\.toml:12: schedule\.steps must be increasing, got \[10, 5\]"),
    Case("stage-trainable", recipe(GOOD + "[[stages]]\ntrainable = 'backbone'\n"),
         r".*r\.toml:11: stages\[0\]\.trainable must be 'head', 'all' or 'from:LAYER_NAME', got 'backbone'"),
    Case("stage-changes-source", recipe(GOOD + "[[stages]]\n'data.source' = 'sklearn:digits'\n"),
         r".*r\.toml:\d+: stages\[0\]\.data\.source cannot change between stages; set it at the top level"),
    Case("unknown-source-scheme", with_data('source = "foldr:photos"'),
         r".*r\.toml:3: data\.source must be one of .*got 'foldr:photos' — did you mean 'folder'\?"),
    Case("search-unknown-path", recipe(GOOD + "[search.space]\n'optimizer.lr' = { log_uniform = [1e-4, 1e-1] }\n"),
         r".*r\.toml:11: .*unknown field 'optimizer\.lr'.*"),
    Case("search-bad-range", recipe(GOOD + "[search.space]\n'optimizer.learning_rate' = { log_uniform = [1e-1, 1e-4] }\n"),
         r".*r\.toml:11: search\.space\.optimizer\.learning_rate.*"),
    Case("recipe-missing", lambda tmp: ["fit", str(tmp / "nope.toml")],
         r".*nope\.toml: cannot read recipe: No such file or directory; expected a readable TOML file"),
    Case("recipe-is-a-folder", lambda tmp: ["fit", str(tmp)], r".*", exit_code=2),
    Case("set-without-equals", lambda tmp: recipe(GOOD)(tmp) + ["--set", "optimizer.learning_rate"],
         r"--set 'optimizer\.learning_rate': expected PATH=VALUE, e\.g\. optimizer\.learning_rate=3e-4"),
    Case("set-code-is-just-a-string",
         lambda tmp: recipe(GOOD)(tmp) + ["--set", "optimizer.learning_rate=__import__('os').system('touch pwned')"],
         r"--set optimizer\.learning_rate=.*: optimizer\.learning_rate must be a float > 0, got .*"),
    # --- data ---------------------------------------------------------------------
    Case("folder-missing", with_data('source = "folder:TMP/nothing"'), r"data\.source.*nothing.*"),
    Case("folder-without-classes", folder_case({}),
         r"data\.source folder '.*photos' has no sub-folders; expected a folder with one sub-folder of images per class"),
    Case("class-folder-without-images", folder_case({"cat": 6, "dog": 0}),
         r"data\.source folder '.*photos': class folder\(s\) 'dog' have no readable image; expected at least one per class.*"),
    Case("every-image-corrupt-or-empty", folder_case({}, corrupt={"cat": 4, "dog": 4}),
         r"data\.source.*photos.*(corrupt|read|open).*"),
    Case("tfds-unknown-name", with_data('source = "tfds:no_such_dataset_xyz"'),
         r"data\.source.*no_such_dataset_xyz.*"),
    Case("npz-missing", with_data('source = "npz:TMP/none.npz"'),
         r"data\.source npz file '.*none\.npz' does not exist; expected a \.npz file with arrays x and y"),
    Case("npz-wrong-keys", npz_case(a=np.zeros((4, 8, 8)), b=np.zeros(4)),
         r"data\.source npz file '.*d\.npz' has arrays \['a', 'b'\]; expected 'x' \(or 'images'\) and 'y' \(or 'labels'\)"),
    Case("npz-length-mismatch", npz_case(x=np.zeros((4, 8, 8)), y=np.zeros(3, int)),
         r"data\.source npz file '.*d\.npz' has 4 images but 3 labels; expected equal"),
    Case("npz-pickled-objects", npz_case(x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4, int)),
         r"data\.source npz file '.*d\.npz' cannot be read as \.npz: .*pickle.*"),
    # --- models -------------------------------------------------------------------
    Case("weights-file-missing", weights_case("missing"),
         r"model\.weights: file not found: '.*missing\.weights\.h5'.*"),
    Case("weights-file-mismatch", weights_case("mismatch"),
         r"model\.weights: '.*other\.weights\.h5' does not fit backbone 'small_cnn' at input \[8, 8, 1\] "
         r"\(\d+ layers do not match\); expected weights saved from the same backbone, .*"),
    Case("input-too-small-for-backbone",
         recipe(GOOD.replace("width = 4", 'width = 4\nbackbone = "resnet50"').replace("channels = 1", "channels = 3")),
         r"data\.image_size must be at least \[32, 32\] for backbone 'resnet50', got \[8, 8\]"),
    Case("unknown-feature-layer", recipe(GOOD.replace("width = 4", 'width = 4\nfeature_layer = "block9"')),
         r"model\.feature_layer: backbone 'small_cnn' has no layer 'block9' — did you mean '.*'\?"),
    # --- logs and run directories ---------------------------------------------------
    Case("diagnose-missing", lambda tmp: ["diagnose", str(tmp / "nope")], r".*nope.*"),
    Case("diagnose-empty-folder", lambda tmp: ["diagnose", str(tmp)], r".*not a kadvisor run directory.*"),
    Case("diagnose-header-only", diagnose_file("epoch,loss,val_loss\n"), r".*log\.csv.*"),
    Case("diagnose-binary", diagnose_file(bytes(range(256)) * 4), r".*log\.csv.*"),
    Case("diagnose-no-loss", diagnose_file("epoch,foo\n0,x\n1,y\n"), r".*log\.csv.*"),
    Case("diagnose-json-not-history", diagnose_file("[1, 2, 3]", "history.json"), r".*history\.json.*"),
    Case("resume-corrupt-state", run_dir_case(lambda run: (set_status(run, "running"),
                                                          (run / "checkpoint").mkdir(exist_ok=True),
                                                          (run / "checkpoint" / "state.json").write_text("{oops"))),
         r".*state\.json: not a kadvisor checkpoint state.*"),
    Case("resume-broken-recipe", run_dir_case(lambda run: (set_status(run, "running"),
                                                          (run / "recipe.toml").write_text("name = 'x\n"))),
         r".*recipe\.toml(:1)?: invalid TOML: .*"),
    Case("tune-refine-not-a-tuning-dir", lambda tmp: ["tune", "--refine", str(tmp)],
         r"--refine .*: not a tuning directory \(no search\.toml\); expected a directory written by kadvisor tune"),
    Case("evaluate-not-a-run", lambda tmp: ["evaluate", str(tmp)],
         r".*: no recipe\.toml, data\.json, model\.keras; expected a finished run directory from kadvisor fit"),
    Case("evaluate-model-with-code", run_dir_case(lambda run: _lambda_model(run / "model.keras"), "evaluate"),
         r".*model\.keras: refused by Keras safe mode: the file holds Python code .*; expected a model saved by kadvisor fit"),
]


def _lambda_model(path: Path) -> None:
    """A model whose file holds Python code (a Lambda layer): must never be executed."""
    import keras

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(outputs))).save(path)


@pytest.fixture(scope="module", autouse=True)
def finished_run(tmp_path_factory):
    import kadvisor
    from kadvisor.recipe import recipe_from_text

    run = kadvisor.fit(recipe_from_text(GOOD), tmp_path_factory.mktemp("runs"), quiet=True)
    FINISHED["path"] = run.path
    yield


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = case.make(tmp_path)
    if case.id == "not-utf8":
        (tmp_path / "r.toml").write_bytes(b"name = '\xff\xfe'\n")
    result = CliRunner().invoke(main, args)
    output = result.output.strip()
    assert result.exit_code == case.exit_code, output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = output.splitlines()
    assert len(lines) == 1 if case.exit_code == 1 else lines, output
    if case.exit_code == 1:
        assert lines[0].startswith("Error: "), output
        assert re.fullmatch(case.message, lines[0][len("Error: "):]), output
    assert not (tmp_path / "pwned").exists()
