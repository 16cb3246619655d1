"""Training-time augmentation from ``[data.augment]``, with Keras preprocessing layers.

Each option maps to one layer, absent when the option is 0 / "none" / false:

    crop        RandomCrop(image_size) from data.resize_to (only when it is larger)
    flip        RandomFlip("horizontal" | "vertical" | "horizontal_and_vertical")
    rotation    RandomRotation(rotation)            fraction of a full turn
    zoom        RandomZoom((-zoom, zoom))           in and out
    translate   RandomTranslation(translate, translate)
    brightness  RandomBrightness(brightness, value_range=(0, 255))
    contrast    RandomContrast(contrast)            factor in [1 - c, 1 + c]
    saturation  RandomSaturation                    factor in [1 - s, 1 + s] (RGB only)
    hue         RandomHue(2 * hue)                  shift in [-hue, hue] of the wheel (RGB only)
    noise       GaussianNoise(noise) on the image scaled to [0, 1], i.e. a standard
                deviation of noise * 255 pixel levels (Keras caps stddev at 1)

The augmenter is applied per example inside ``Dataset.map`` before batching, because
some layers (RandomCrop) draw one transformation per call, i.e. per batch. Outputs are
clipped back to [0, 255].
"""

from __future__ import annotations

import warnings
from typing import Callable

OPTIONS = ("crop", "flip", "rotation", "zoom", "translate", "brightness", "contrast",
           "saturation", "hue", "noise")
_FLIP_MODES = {
    "horizontal": "horizontal",
    "vertical": "vertical",
    "both": "horizontal_and_vertical",
}


def build_layers(
    augment, image_size: list[int], stored_size: list[int], channels: int, seed: int
) -> list:
    """Builds the Keras preprocessing layers the ``[data.augment]`` section asks for.

    Args:
        augment: The recipe's `Augment` section.
        image_size: ``[height, width]`` the model takes.
        stored_size: ``[height, width]`` of the images before augmentation
            (``data.resize_to`` or ``image_size``).
        channels: Channels of the images (saturation and hue need 3).
        seed: Base seed; layer ``i`` gets ``seed + i``.

    Returns:
        The layers in application order (possibly empty).
    """
    import keras

    layers = []

    def add(layer_cls, *args, **kwargs):
        layers.append(layer_cls(*args, seed=seed + len(layers), **kwargs))

    if augment.crop and list(stored_size) != list(image_size):
        add(keras.layers.RandomCrop, *image_size)
    if augment.flip != "none":
        add(keras.layers.RandomFlip, _FLIP_MODES[augment.flip])
    if augment.rotation:
        add(keras.layers.RandomRotation, augment.rotation)
    if augment.zoom:
        add(keras.layers.RandomZoom, (-augment.zoom, augment.zoom))
    if augment.translate:
        add(keras.layers.RandomTranslation, augment.translate, augment.translate)
    if augment.brightness:
        add(keras.layers.RandomBrightness, augment.brightness, value_range=(0, 255))
    if augment.contrast:
        add(keras.layers.RandomContrast, augment.contrast, value_range=(0, 255))
    colour = [name for name in ("saturation", "hue") if getattr(augment, name)]
    if colour and channels != 3:
        warnings.warn(
            f"data.augment.{colour[0]} needs RGB images but data.channels is {channels}; "
            f"ignored",
            UserWarning,
            stacklevel=2,
        )
    elif colour:
        if augment.saturation and hasattr(keras.layers, "RandomSaturation"):
            add(keras.layers.RandomSaturation, _saturation_factor(augment.saturation),
                value_range=(0, 255))
        if augment.hue and hasattr(keras.layers, "RandomHue"):
            add(keras.layers.RandomHue, min(1.0, 2 * augment.hue), value_range=(0, 255))
    if augment.noise:
        add(keras.layers.GaussianNoise, augment.noise)
    return layers


def _saturation_factor(change: float) -> tuple[float, float]:
    """Keras's RandomSaturation factor ``f`` scales saturation by ``f / (1 - f)``.

    Returns the ``f`` range that scales it by ``[1 - change, 1 + change]``.
    """
    low, high = 1.0 - change, 1.0 + change
    return (low / (1.0 + low), high / (1.0 + high))


def build_augmenter(augment, image_size, stored_size, channels: int, seed: int) -> Callable | None:
    """Returns ``fn(image float32 (H, W, C)) -> image`` applying the layers, or None.

    See `build_layers` for the arguments.
    """
    layers = build_layers(augment, image_size, stored_size, channels, seed)
    if not layers:
        return None

    import keras
    import tensorflow as tf

    def apply(image):
        for layer in layers:
            if isinstance(layer, keras.layers.GaussianNoise):  # stddev is in [0, 1] units
                image = layer(image / 255.0, training=True) * 255.0
            else:
                image = layer(image, training=True)
        return tf.clip_by_value(image, 0.0, 255.0)

    return apply
