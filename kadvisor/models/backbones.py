"""Backbones behind the registry: keras.applications models and small built-in CNNs.

Registration is pure data (no TensorFlow import), so recipes can be validated quickly;
Keras is imported when a backbone is built.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from typing import Callable

from kadvisor.errors import ModelError
from kadvisor.registry import BACKBONES


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone.

    Attributes:
        name: Recipe name (``model.backbone``).
        preprocess: `ImagePreprocessing` mode matching its `preprocess_input`.
        min_size: Smallest input height/width it accepts.
        application: keras.applications constructor name, or None for built-ins.
        build: Builder for built-in CNNs: (input_shape, width) -> keras.Model.
        default_feature_layer: Layer whose output bilinear heads pool by default
            ("" = the final convolutional output).
        kwargs: Extra constructor arguments.
    """

    name: str
    preprocess: str
    min_size: int = 32
    application: str | None = None
    build: Callable | None = None
    default_feature_layer: str = ""
    kwargs: tuple = ()


def _app(name, application, preprocess, min_size=32, feature_layer="", **kwargs):
    BACKBONES.add(
        name,
        BackboneSpec(name, preprocess, min_size, application, None, feature_layer, tuple(kwargs.items())),
    )


_app("resnet50", "ResNet50", "caffe")
_app("resnet50v2", "ResNet50V2", "tf")
_app("vgg16", "VGG16", "caffe", feature_layer="block5_conv3")
_app("mobilenetv2", "MobileNetV2", "tf")
_app("mobilenetv3small", "MobileNetV3Small", "none", include_preprocessing=True)
_app("efficientnetb0", "EfficientNetB0", "none")
_app("efficientnetv2b0", "EfficientNetV2B0", "none", include_preprocessing=True)
_app("convnexttiny", "ConvNeXtTiny", "none", include_preprocessing=True)
_app("densenet121", "DenseNet121", "torch")
_app("xception", "Xception", "tf", min_size=71)
_app("inceptionv3", "InceptionV3", "tf", min_size=75)


# Keras's default BatchNormalization momentum (0.99) averages over ~100 updates; small
# data sets give the built-in CNNs 10-50 updates per epoch, so with 0.99 the moving
# statistics lag the weights for many epochs and validation trails training (seen on
# digits: validation at chance for the first epochs, and Hyperband's 1-epoch trials
# ranked on noise). 0.9 averages over ~10 updates, as in the original ResNet code.
_BN_MOMENTUM = 0.9


def _batch_norm(name: str):
    import keras

    return keras.layers.BatchNormalization(momentum=_BN_MOMENTUM, name=name)


def _conv_block(x, filters: int, name: str, convs: int = 2):
    import keras

    for i in range(convs):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i + 1}")(x)
        x = _batch_norm(f"{name}_bn{i + 1}")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu{i + 1}")(x)
    return x


def small_cnn(input_shape, width: int = 32):
    """A VGG-style CNN for small images: three blocks of two 3×3 convs with BN.

    The last block's output (``block3_relu2``) is the feature map heads pool.
    """
    import keras

    inputs = keras.Input(input_shape)
    x = inputs
    for i, mult in enumerate((1, 2, 4), start=1):
        x = _conv_block(x, width * mult, f"block{i}")
        if i < 3:
            x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    return keras.Model(inputs, x, name="backbone")


def small_resnet(input_shape, width: int = 16):
    """A CIFAR-style ResNet (3 stages × 2 basic blocks; ResNet-14) for small images."""
    import keras

    L = keras.layers
    inputs = keras.Input(input_shape)
    x = L.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = L.Activation("relu", name="stem_relu")(_batch_norm("stem_bn")(x))
    for stage, mult in enumerate((1, 2, 4), start=1):
        for block in (1, 2):
            name = f"stage{stage}_block{block}"
            stride = 2 if stage > 1 and block == 1 else 1
            shortcut = x
            y = L.Conv2D(width * mult, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
            y = L.Activation("relu", name=f"{name}_relu1")(_batch_norm(f"{name}_bn1")(y))
            y = L.Conv2D(width * mult, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
            y = _batch_norm(f"{name}_bn2")(y)
            if stride != 1 or shortcut.shape[-1] != width * mult:
                shortcut = L.Conv2D(width * mult, 1, strides=stride, use_bias=False, name=f"{name}_proj")(shortcut)
                shortcut = _batch_norm(f"{name}_proj_bn")(shortcut)
            x = L.Activation("relu", name=f"{name}_out")(L.Add(name=f"{name}_add")([y, shortcut]))
    return keras.Model(inputs, x, name="backbone")


BACKBONES.add("small_cnn", BackboneSpec("small_cnn", "scale", 8, None, small_cnn))
BACKBONES.add("small_resnet", BackboneSpec("small_resnet", "scale", 8, None, small_resnet))


def build_backbone(name: str, input_shape: tuple, weights: str = "none",
                   feature_layer: str = "", width: int = 32):
    """Builds a backbone as a functional `keras.Model` named "backbone".

    Args:
        name: Registered backbone name.
        input_shape: (height, width, channels).
        weights: "imagenet", "none", or a path to a ``.weights.h5`` file saved from the
            same backbone (e.g. by an earlier kadvisor run's ``backbone.weights.h5``).
        feature_layer: Truncate the backbone at this layer ("" = its output).
        width: Base filters of built-in CNNs.

    Returns:
        (backbone model, `BackboneSpec`).

    Raises:
        ModelError: unknown backbone, input too small, bad weights or feature layer.
    """
    import keras

    try:
        spec: BackboneSpec = BACKBONES.get(name)
    except KeyError as e:
        raise ModelError(f"model.backbone: {e.args[0]}") from None
    h, w, c = input_shape
    if min(h, w) < spec.min_size:
        raise ModelError(
            f"data.image_size must be at least [{spec.min_size}, {spec.min_size}] for "
            f"backbone '{name}', got [{h}, {w}]"
        )
    if weights not in ("imagenet", "none") and not os.path.isfile(weights):
        raise ModelError(f"model.weights: file not found: '{weights}' (expected 'imagenet', 'none' or a .weights.h5 file)")
    if spec.application is None:
        if weights == "imagenet":
            raise ModelError(f"model.weights: backbone '{name}' has no ImageNet weights; use 'none' or a .weights.h5 file")
        model = spec.build(input_shape, width)
    else:
        if weights == "imagenet" and c != 3:
            raise ModelError(f"data.channels must be 3 for ImageNet weights, got {c}")
        constructor = getattr(keras.applications, spec.application)
        try:
            model = constructor(
                include_top=False,
                weights="imagenet" if weights == "imagenet" else None,
                input_shape=tuple(input_shape),
                **dict(spec.kwargs),
            )
        except Exception as e:  # download failures, shape checks: one line for the user
            raise ModelError(f"model.backbone '{name}' could not be built: {str(e).splitlines()[0]}") from None
    model = keras.Model(model.inputs, model.outputs[0], name="backbone")
    truncated = model
    if feature_layer:
        try:
            layer = model.get_layer(feature_layer)
        except ValueError:
            raise ModelError(
                f"model.feature_layer: backbone '{name}' has no layer '{feature_layer}'"
                f"{_close_layer(model, feature_layer)}"
            ) from None
        truncated = keras.Model(model.inputs, layer.output, name="backbone")
    if weights not in ("imagenet", "none"):
        # The file holds the whole backbone, or -- saved by a run whose head pooled
        # `feature_layer` -- the truncated one; both share the same layer objects.
        error = None
        for target in dict.fromkeys((model, truncated)):
            try:
                with warnings.catch_warnings():  # Keras warns per layer; one error says it all
                    warnings.simplefilter("ignore")
                    target.load_weights(weights)
                error = None
                break
            except Exception as e:
                error = error or e
        if error is not None:
            raise ModelError(
                f"model.weights: '{weights}' does not fit backbone '{name}' at input "
                f"{list(input_shape)} ({_load_problem(error)}); expected weights saved from the "
                f"same backbone, e.g. a run directory's backbone.weights.h5"
            ) from None
    return truncated, spec


def _load_problem(error: Exception) -> str:
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    found = re.match(r"A total of (\d+) objects could not be loaded", first)
    return f"{found.group(1)} layers do not match" if found else first.rstrip(":")


def _close_layer(model, name: str) -> str:
    from kadvisor.registry import did_you_mean

    return did_you_mean(name, [layer.name for layer in model.layers])
