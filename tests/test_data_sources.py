"""Each data source: what it loads, and the one-line errors for bad input."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from kadvisor.data import load_split_arrays, prepare_data
from kadvisor.data.sources import load_source
from kadvisor.errors import DataError
from kadvisor.recipe import Recipe, apply_overrides


def make_recipe(values: dict) -> Recipe:
    return apply_overrides(Recipe(), {"data.image_size": [8, 8], **values}.items())


def test_importing_sources_does_not_import_tensorflow_tfds_or_sklearn():
    code = (
        "import sys, kadvisor.data, kadvisor.data.sources\n"
        "from kadvisor.registry import SOURCES\n"
        "assert SOURCES.names() == ['folder', 'npz', 'sklearn', 'synthetic', 'tfds'], SOURCES.names()\n"
        "heavy = [m for m in ('tensorflow', 'tensorflow_datasets', 'sklearn', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- sklearn:digits --------------------------------------------------------------------


def test_digits_is_scaled_to_uint8_grayscale():
    source = load_source(make_recipe({}).data, seed=0)
    pool = source.pools["train"]
    assert source.class_names == [str(i) for i in range(10)]
    assert len(pool.labels) == 1797 and pool.channels == 1
    images = next(iter(pool.make_dataset(np.arange(1797)).batch(1797)))[0].numpy()
    assert images.dtype == np.uint8 and images.shape == (1797, 8, 8, 1)
    assert images.max() == 255 and images.min() == 0


def test_unknown_sklearn_set_is_a_data_error():
    with pytest.raises(DataError, match="'iris'; expected 'sklearn:digits'"):
        load_source(make_recipe({"data.source": "sklearn:iris"}).data, seed=0)


# --- folder:PATH -----------------------------------------------------------------------


def write_folder(root: Path) -> None:
    """Class 'cat': RGB png of two sizes, a grayscale jpeg, a corrupt and a truncated file;
    class 'dog': RGBA png, bmp and gif."""
    rng = np.random.default_rng(0)
    (root / "cat").mkdir(parents=True)
    (root / "dog" / "nested").mkdir(parents=True)
    for i in range(4):
        size = (10, 12) if i % 2 else (20, 14)
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / "cat" / f"c{i}.png")
    Image.fromarray(rng.integers(0, 255, (9, 7), dtype=np.uint8), "L").save(root / "cat" / "gray.jpg")
    (root / "cat" / "bad.jpg").write_bytes(b"this is not an image")
    good = (root / "cat" / "c0.png").read_bytes()
    (root / "cat" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "cat" / "notes.txt").write_text("ignored: not an image extension")
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 4), dtype=np.uint8), "RGBA").save(root / "dog" / f"d{i}.PNG")
    Image.fromarray(rng.integers(0, 255, (11, 13, 3), dtype=np.uint8)).save(root / "dog" / "d.bmp")
    Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(root / "dog" / "nested" / "d.gif")


def test_folder_loads_mixed_images_and_names_the_corrupt_files(tmp_path):
    write_folder(tmp_path / "images")
    recipe = make_recipe({
        "data.source": f"folder:{tmp_path / 'images'}",
        "data.val_fraction": 0.2,
        "data.test_fraction": 0.2,
    })
    with pytest.warns(UserWarning, match=r"skipped 2 .*bad\.jpg.*truncated\.png"):
        bundle = prepare_data(recipe, batch_size=4)
    info = bundle.info.to_json()
    assert info["class_names"] == ["cat", "dog"]
    assert sorted(Path(p).name for p in info["skipped_files"]) == ["bad.jpg", "truncated.png"]
    total = sum(s["size"] for s in info["splits"].values())
    assert total == 10  # 5 readable cats + 5 dogs
    seen = 0
    for ds in (bundle.train, bundle.validation, bundle.test):
        for x, y in ds:
            assert x.shape[1:] == (8, 8, 3) and x.dtype.name == "float32"
            assert 0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 255
            seen += len(y)
    assert seen == 10


def test_folder_with_only_corrupt_files_is_a_data_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match="broken.png"):
        load_source(make_recipe({"data.source": f"folder:{tmp_path}"}).data, seed=0)


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing", "does not exist"),
        ("empty", "has no sub-folders"),
        ("no_images", "has no .jpg"),
    ],
)
def test_folder_errors_name_the_path(tmp_path, layout, message):
    root = tmp_path / "data"
    if layout != "missing":
        root.mkdir()
    if layout == "no_images":
        (root / "cls").mkdir()
        (root / "cls" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=message) as error:
        load_source(make_recipe({"data.source": f"folder:{root}"}).data, seed=0)
    assert str(root) in str(error.value) and "\n" not in str(error.value)


# --- npz:PATH --------------------------------------------------------------------------


def test_npz_scales_unit_floats_and_maps_string_labels(tmp_path):
    x = np.random.default_rng(0).random((30, 6, 6)).astype(np.float32)
    x[0] = 1.0
    y = np.array(["zebra", "ant", "bee"] * 10)
    np.savez(tmp_path / "d.npz", images=x, labels=y)
    recipe = make_recipe({"data.source": f"npz:{tmp_path / 'd.npz'}", "data.image_size": [6, 6],
                          "data.channels": 1, "data.test_fraction": 0.3})
    source = load_source(recipe.data, seed=0)
    assert source.class_names == ["ant", "bee", "zebra"]
    assert source.pools["train"].labels[:3].tolist() == [2, 0, 1]
    xs, ys = load_split_arrays(recipe, "test")
    assert xs.shape == (9, 6, 6, 1) and xs.max() <= 255 and xs.max() > 200
    assert np.bincount(ys).tolist() == [3, 3, 3]


def test_npz_with_integer_labels_and_class_names(tmp_path):
    x = np.zeros((12, 4, 4, 3), np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(12) % 3, class_names=np.array(["a", "b", "c"]))
    source = load_source(make_recipe({"data.source": f"npz:{tmp_path / 'd.npz'}"}).data, seed=0)
    assert source.class_names == ["a", "b", "c"] and source.pools["train"].channels == 3


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((4, 4, 4))}, "expected 'x' .*and 'y'"),
        ({"x": np.zeros((4, 4, 4)), "y": np.arange(3)}, "4 images but 3 labels"),
        ({"x": np.zeros((4, 4, 4)), "y": np.arange(4), "class_names": np.array(["a"])}, "label 3 but 1 class_names"),
        ({"x": np.zeros((4, 4)), "y": np.arange(4)}, r"shape \(4, 4\)"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_source(make_recipe({"data.source": f"npz:{tmp_path / 'd.npz'}"}).data, seed=0)


def test_missing_npz_is_a_data_error_naming_the_path(tmp_path):
    with pytest.raises(DataError, match=r"nope\.npz' does not exist"):
        load_source(make_recipe({"data.source": f"npz:{tmp_path / 'nope.npz'}"}).data, seed=0)


# --- synthetic:textures ----------------------------------------------------------------


def test_synthetic_textures_are_generated_at_the_input_size():
    source = load_source(make_recipe({"data.source": "synthetic:textures"}).data, seed=3)
    pool = source.pools["train"]
    assert len(source.class_names) == 4 and np.bincount(pool.labels).min() > 0
    image = next(iter(pool.make_dataset(np.array([0]))))[0]
    assert image.shape == (8, 8, 3)


def test_unknown_synthetic_set_is_a_data_error():
    with pytest.raises(DataError, match="synthetic:textures"):
        load_source(make_recipe({"data.source": "synthetic:noise"}).data, seed=0)


# --- tfds:NAME (offline, with tfds.testing.mock_data) -------------------------------


def test_tfds_uses_its_test_split_and_carves_validation():
    recipe = make_recipe({"data.source": "tfds:mnist", "data.test_split": "test",
                          "data.val_fraction": 0.25})
    with tfds.testing.mock_data(num_examples=40):
        bundle = prepare_data(recipe, batch_size=64)
        splits = bundle.info.splits
        assert splits["test"]["size"] == 40  # the whole TFDS test split
        assert splits["validation"]["size"] == 10 and splits["train"]["size"] == 30
        assert bundle.info.class_names == [str(i) for i in range(10)]
        x, y = next(iter(bundle.test))
        assert x.shape == (40, 8, 8, 3) and y.dtype.name == "int32"  # 28x28x1 → 8x8x3
        np.testing.assert_array_equal(x[..., 0], x[..., 2])


def test_tfds_carves_test_and_validation_from_variable_size_images():
    recipe = make_recipe({"data.source": "tfds:tf_flowers", "data.val_fraction": 0.2})
    with tfds.testing.mock_data(num_examples=50):
        bundle = prepare_data(recipe, batch_size=64)
        sizes = {k: v["size"] for k, v in bundle.info.splits.items()}
        assert sizes == {"train": 30, "validation": 10, "test": 10}
        assert bundle.info.class_names[:2] == ["dandelion", "daisy"]
        labels = np.concatenate([y.numpy() for _, y in bundle.train])
        assert len(labels) == 30
        assert np.bincount(labels, minlength=5).tolist() == list(bundle.info.splits["train"]["counts"].values())


def test_unknown_tfds_name_is_a_data_error():
    with pytest.raises(DataError, match="'mnits' cannot be found"):
        load_source(make_recipe({"data.source": "tfds:mnits"}).data, seed=0)


# --- the registry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, hint",
    [("fodler:/tmp/x", " — did you mean 'folder'?"), ("digits", "")],
)
def test_unknown_scheme_is_a_data_error(source, hint):
    data = make_recipe({}).data
    data.source = source  # bypasses the recipe validator, as a caller could
    with pytest.raises(DataError) as error:
        load_source(data, seed=0)
    assert str(error.value) == (
        f"data.source: unknown data source {source!r}{hint}; expected one of "
        "folder:..., npz:..., sklearn:..., synthetic:..., tfds:..."
    )
