"""The tf.data pipeline: shapes, dtypes, channels, resize and crop, shuffling, augmentation."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from kadvisor.data import DataBundle, load_split_arrays, prepare_data
from kadvisor.data.augment import OPTIONS, build_layers
from kadvisor.errors import DataError
from kadvisor.recipe import Recipe, apply_overrides


def make_recipe(values: dict) -> Recipe:
    return apply_overrides(Recipe(), {"data.image_size": [8, 8], **values}.items())


@pytest.fixture(scope="module")
def rgb_npz(tmp_path_factory):
    """24 RGB 12×12 images, 3 classes; pixel values encode (image, row, column)."""
    path = tmp_path_factory.mktemp("npz") / "rgb.npz"
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 12, 12, 3), dtype=np.uint8)
    np.savez(path, x=x, y=np.arange(24) % 3)
    return path, x


def npz_recipe(rgb_npz, values: dict) -> Recipe:
    return make_recipe({"data.source": f"npz:{rgb_npz[0]}", "data.val_fraction": 0.25,
                        "data.test_fraction": 0.25, "data.image_size": [12, 12], **values})


def epoch(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds))
    return np.concatenate(xs), np.concatenate(ys)


def test_batches_have_the_model_input_shape_dtype_and_range():
    bundle = prepare_data(make_recipe({"train.batch_size": 50}))
    assert bundle.info.image_shape == [8, 8, 3] and bundle.batch_size == 50
    for ds in (bundle.train, bundle.validation, bundle.test):
        x, y = next(iter(ds))
        assert x.shape == (50, 8, 8, 3) and x.dtype.name == "float32"
        assert y.shape == (50,) and y.dtype.name == "int32"
        x = x.numpy()
        assert x.min() >= 0 and x.max() <= 255 and x.max() > 128


def test_unbatched_bundle_batches_later_once():
    bundle = prepare_data(make_recipe({}), batched=False)
    assert bundle.batch_size is None
    assert next(iter(bundle.train))[0].shape == (8, 8, 3)
    batched = bundle.batch(16)
    assert isinstance(batched, DataBundle) and next(iter(batched.validation))[0].shape == (16, 8, 8, 3)
    with pytest.raises(ValueError, match="already batched"):
        batched.batch(16)


def test_grayscale_source_is_tiled_to_rgb_and_kept_gray():
    rgb = load_split_arrays(make_recipe({}), "test")[0]
    gray = load_split_arrays(make_recipe({"data.channels": 1}), "test")[0]
    assert rgb.shape[-1] == 3 and gray.shape[-1] == 1
    np.testing.assert_array_equal(rgb[..., :1], gray)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_rgb_source_is_converted_to_gray(rgb_npz):
    gray, _ = load_split_arrays(npz_recipe(rgb_npz, {"data.channels": 1}), "train")
    rgb, _ = load_split_arrays(npz_recipe(rgb_npz, {}), "train")
    expected = np.rint(rgb @ np.array([0.2989, 0.5870, 0.1140]))
    assert gray.shape == rgb.shape[:-1] + (1,)
    assert np.abs(gray[..., 0] - expected).max() <= 1


def test_resize_to_then_centre_crop_for_evaluation(rgb_npz):
    recipe = npz_recipe(rgb_npz, {"data.image_size": [8, 8], "data.resize_to": [12, 12],
                                  "data.augment.crop": True})
    test, _ = load_split_arrays(recipe, "test")
    full, _ = load_split_arrays(npz_recipe(rgb_npz, {}), "test")  # same split, uncropped
    np.testing.assert_array_equal(test, full[:, 2:10, 2:10])


def test_resize_changes_the_size(rgb_npz):
    x, _ = load_split_arrays(npz_recipe(rgb_npz, {"data.image_size": [5, 7]}), "test")
    assert x.shape[1:] == (5, 7, 3)


def windows(image: np.ndarray, size: int) -> list[np.ndarray]:
    n = image.shape[0] - size + 1
    return [image[i : i + size, j : j + size] for i in range(n) for j in range(n)]


@pytest.mark.parametrize("crop", [True, False])
def test_training_crops_randomly_only_with_augment_crop(rgb_npz, crop):
    recipe = npz_recipe(rgb_npz, {"data.image_size": [8, 8], "data.resize_to": [12, 12],
                                  "data.augment.crop": crop, "data.shuffle": False,
                                  "data.val_fraction": 0.0, "data.test_fraction": 0.0})
    source = rgb_npz[1]
    bundle = prepare_data(recipe, batch_size=24)
    offsets = set()
    for _ in range(3):
        x, _ = epoch(bundle.train)
        for image, original in zip(x, source):
            found = [k for k, w in enumerate(windows(original, 8)) if np.array_equal(w, image)]
            assert len(found) == 1  # every crop is a window of the 12×12 image
            offsets.add(found[0])
    centre = 2 * 5 + 2
    assert (len(offsets) > 5) if crop else (offsets == {centre})


def test_resize_to_smaller_than_image_size_is_a_data_error():
    with pytest.raises(DataError, match=r"data.resize_to: got \[6, 12\]; expected at least"):
        prepare_data(make_recipe({"data.image_size": [8, 8], "data.resize_to": [6, 12]}))


def test_two_channels_is_a_data_error():
    with pytest.raises(DataError, match="data.channels: got 2; expected 1"):
        prepare_data(make_recipe({"data.channels": 2}))


def test_shuffle_reshuffles_every_epoch_and_is_seeded():
    recipe = make_recipe({"data.test_fraction": 0.0, "data.val_fraction": 0.0})
    bundle = prepare_data(recipe, batch_size=500)
    first, second = epoch(bundle.train)[1], epoch(bundle.train)[1]
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)
    again = epoch(prepare_data(recipe, batch_size=500).train)[1]
    np.testing.assert_array_equal(first, again)

    recipe.set("data.shuffle", False)
    still = prepare_data(recipe, batch_size=500)
    np.testing.assert_array_equal(epoch(still.train)[1], epoch(still.train)[1])


def test_augmentation_changes_training_images_only(rgb_npz):
    plain = npz_recipe(rgb_npz, {"data.shuffle": False})
    augmented = npz_recipe(rgb_npz, {"data.shuffle": False, "data.augment.flip": "both",
                                     "data.augment.noise": 0.05})
    reference = prepare_data(plain, batch_size=64)
    bundle = prepare_data(augmented, batch_size=64)
    train_plain = epoch(reference.train)[0]
    train_a, train_b = epoch(bundle.train)[0], epoch(bundle.train)[0]
    assert not np.allclose(train_a, train_plain) and not np.allclose(train_a, train_b)
    for name in ("validation", "test"):
        np.testing.assert_array_equal(epoch(getattr(bundle, name))[0], epoch(getattr(reference, name))[0])
        np.testing.assert_array_equal(epoch(getattr(bundle, name))[0], epoch(getattr(bundle, name))[0])


AUGMENT_VALUES = {"crop": True, "flip": "horizontal", "rotation": 0.2, "zoom": 0.3, "translate": 0.2,
                  "brightness": 0.3, "contrast": 0.5, "saturation": 0.5, "hue": 0.2, "noise": 0.05}


@pytest.mark.parametrize("option", OPTIONS)
def test_every_augmentation_option_builds_and_runs(rgb_npz, option):
    recipe = npz_recipe(rgb_npz, {"data.shuffle": False, "data.image_size": [8, 8],
                                  "data.resize_to": [12, 12], f"data.augment.{option}": AUGMENT_VALUES[option]})
    assert len(build_layers(recipe.data.augment, [8, 8], [12, 12], 3, 0)) == 1
    bundle = prepare_data(recipe, batch_size=64)
    x, _ = epoch(bundle.train)
    plain, _ = load_split_arrays(recipe, "train")
    assert x.shape == plain.shape and x.min() >= 0 and x.max() <= 255
    assert not np.allclose(x, plain), option


@pytest.mark.parametrize("option", ["saturation", "hue"])
def test_colour_augmentation_is_skipped_for_grayscale(option):
    recipe = make_recipe({"data.channels": 1, f"data.augment.{option}": 0.2})
    with pytest.warns(UserWarning, match=f"data.augment.{option} needs RGB"):
        assert build_layers(recipe.data.augment, [8, 8], [8, 8], 1, 0) == []


def test_load_split_arrays_matches_the_test_dataset():
    recipe = make_recipe({})
    x, y = load_split_arrays(recipe, "test")
    bx, by = epoch(prepare_data(recipe).test)
    np.testing.assert_array_equal(x, bx)
    np.testing.assert_array_equal(y, by)
    assert x.dtype == np.float32 and y.dtype == np.int64 and len(y) == 360


def test_load_split_arrays_of_a_missing_split_is_a_data_error():
    with pytest.raises(DataError, match="no 'test' split"):
        load_split_arrays(make_recipe({"data.test_fraction": 0.0}), "test")
    with pytest.raises(DataError, match="expected one of train, validation, test"):
        load_split_arrays(make_recipe({}), "valid")
