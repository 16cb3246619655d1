"""Backbones, heads and model assembly: every registered component meets one contract."""

import numpy as np
import pytest

import keras

from kadvisor.errors import ModelError
from kadvisor.models import build_model
from kadvisor.models.backbones import BackboneSpec, build_backbone
from kadvisor.models.preprocess import ImagePreprocessing
from kadvisor.recipe import Recipe
from kadvisor.registry import BACKBONES, HEADS

# Large ImageNet backbones take several seconds each to build on 2 CPU cores.
HEAVY = {"resnet50", "resnet50v2", "vgg16", "densenet121", "xception", "inceptionv3", "convnexttiny"}


def _recipe(**values) -> Recipe:
    recipe = Recipe()
    for path, value in values.items():
        recipe.set(path.replace("__", "."), value)
    return recipe


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in BACKBONES.names()]
)
def test_every_backbone_builds_without_weights_and_runs_one_batch(name):
    spec: BackboneSpec = BACKBONES.get(name)
    size = max(spec.min_size, 32)
    recipe = _recipe(model__backbone=name, data__image_size=[size, size])
    model = build_model(recipe, num_classes=3, input_shape=(size, size, 3))
    out = model.predict(np.random.uniform(0, 255, (2, size, size, 3)).astype("float32"), verbose=0)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("backbone") is not None and model.get_layer("classifier").dtype == "float32"


@pytest.mark.parametrize("name", [n for n in BACKBONES.names() if BACKBONES.get(n).application])
def test_preprocessing_layer_matches_keras_preprocess_input(name):
    spec = BACKBONES.get(name)
    module = {
        "ResNet50": "resnet", "ResNet50V2": "resnet_v2", "VGG16": "vgg16", "MobileNetV2": "mobilenet_v2",
        "MobileNetV3Small": "mobilenet_v3", "EfficientNetB0": "efficientnet", "EfficientNetV2B0": "efficientnet_v2",
        "ConvNeXtTiny": "convnext", "DenseNet121": "densenet", "Xception": "xception", "InceptionV3": "inception_v3",
    }[spec.application]
    preprocess_input = getattr(keras.applications, module).preprocess_input
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = preprocess_input(images.copy())
    got = keras.ops.convert_to_numpy(ImagePreprocessing(spec.preprocess)(images))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_backbone_weights_load_from_a_local_file(tmp_path):
    first, _ = build_backbone("small_cnn", (16, 16, 1), "none", width=8)
    path = str(tmp_path / "b.weights.h5")
    first.save_weights(path)
    second, _ = build_backbone("small_cnn", (16, 16, 1), path, width=8)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    # A truncated backbone (bilinear heads) still takes the whole backbone's file.
    third, _ = build_backbone("small_cnn", (16, 16, 1), path, feature_layer="block2_relu2", width=8)
    np.testing.assert_array_equal(third.get_layer("block1_conv1").get_weights()[0], first.get_layer("block1_conv1").get_weights()[0])


def test_weight_errors_are_clear(tmp_path):
    with pytest.raises(ModelError, match="model.weights: file not found: 'missing.weights.h5'"):
        build_backbone("small_cnn", (16, 16, 1), "missing.weights.h5")
    other, _ = build_backbone("small_cnn", (16, 16, 1), "none", width=4)
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    with pytest.raises(ModelError, match="does not fit backbone 'small_cnn'"):
        build_backbone("small_cnn", (16, 16, 1), path, width=8)
    with pytest.raises(ModelError, match="has no ImageNet weights"):
        build_backbone("small_cnn", (16, 16, 1), "imagenet")
    with pytest.raises(ModelError, match=r"data.image_size must be at least \[75, 75\] for backbone 'inceptionv3'"):
        build_backbone("inceptionv3", (32, 32, 3))
    with pytest.raises(ModelError, match="has no layer 'block9_conv1' — did you mean 'block"):
        build_backbone("small_cnn", (16, 16, 1), feature_layer="block9_conv1")


@pytest.mark.parametrize("head", HEADS.names())
def test_every_head_gives_one_vector_per_image(head):
    recipe = _recipe(model__head=head, model__pooling_dim=64, model__width=4, model__dropout=0.1)
    model = build_model(recipe, num_classes=5, input_shape=(16, 16, 3))
    out = model.predict(np.zeros((2, 16, 16, 3), "float32"), verbose=0)
    assert out.shape == (2, 5) and np.isfinite(out).all()
