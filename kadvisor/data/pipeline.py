"""The one ``tf.data`` pipeline every split goes through.

    decode (in the source) → resize to data.resize_to or data.image_size → convert to
    data.channels → [centre crop to data.image_size] → cache → shuffle (training) →
    [random crop] + augmentation (training) → float32 in [0, 255] → [batch] → prefetch

Images are cached as uint8 (a quarter of the memory of float32) and converted to
float32 after the cache. A centre crop happens before the cache for evaluation, and for
training unless ``data.augment.crop`` asks for a random crop, which must come after it.
Labels leave as int32 class ids (sparse).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kadvisor.data.augment import build_augmenter
from kadvisor.data.balance import oversample
from kadvisor.errors import DataError


def check_sizes(data) -> None:
    """Checks the fields the pipeline needs beyond the schema's own constraints."""
    if data.channels not in (1, 3):
        raise DataError(f"data.channels: got {data.channels}; expected 1 (grayscale) or 3 (RGB)")
    if data.resize_to and any(r < s for r, s in zip(data.resize_to, data.image_size)):
        raise DataError(
            f"data.resize_to: got {list(data.resize_to)}; expected at least data.image_size "
            f"{list(data.image_size)} in both dimensions (the image is cropped from it)"
        )


def stored_size(data) -> list[int]:
    """Size images are resized to before cropping: data.resize_to or data.image_size."""
    return list(data.resize_to or data.image_size)


def examples(source, split, label_map: np.ndarray):
    """Streams a split's examples as ``(image uint8 (H, W, C), label int32)``.

    Args:
        source: The `SourceData`.
        split: A `kadvisor.data.splits.Split`.
        label_map: Source label → split label (see `Splits.label_map`).
    """
    import tensorflow as tf

    table = tf.constant(label_map, tf.int32)

    def relabel(image, label):
        return image, tf.gather(table, tf.cast(label, tf.int32))

    parts = []
    for name in dict.fromkeys(split.pools.tolist()):  # pools in order of appearance
        index = np.sort(split.index[split.pools == name])
        parts.append(source.pools[name].make_dataset(index).map(relabel))
    if not parts:
        raise DataError("data: a split selected no examples")
    ds = parts[0]
    for part in parts[1:]:
        ds = ds.concatenate(part)
    return ds


def preprocess(ds, data, channels_in: int, *, centre_crop: bool):
    """Resize, channel conversion and (optionally) centre crop; images stay uint8."""
    import tensorflow as tf

    size = stored_size(data)

    def fn(image, label):
        image = resize(image, size)
        image = convert_channels(image, channels_in, data.channels)
        if centre_crop and size != list(data.image_size):
            image = tf.image.resize_with_crop_or_pad(image, *data.image_size)
        return image, label

    return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


def resize(image, size: list[int]):
    """Bilinear (antialiased) resize of a uint8 image; a no-op at the right size."""
    import tensorflow as tf

    if image.shape[0] == size[0] and image.shape[1] == size[1]:
        return image
    out = tf.image.resize(image, size, antialias=True)
    out = tf.cast(tf.round(tf.clip_by_value(out, 0.0, 255.0)), tf.uint8)
    out.set_shape([size[0], size[1], image.shape[-1]])
    return out


def convert_channels(image, channels_in: int, channels_out: int):
    """Drops alpha, then tiles grayscale to RGB or converts RGB to grayscale."""
    import tensorflow as tf

    if channels_in in (2, 4):  # grayscale + alpha, RGB + alpha
        image, channels_in = image[..., : channels_in - 1], channels_in - 1
    if channels_in == channels_out:
        return image
    if channels_out == 3:
        return tf.tile(image, [1, 1, 3])
    return tf.image.rgb_to_grayscale(image)


def eval_dataset(source, splits, name: str, data):
    """An evaluation split: no shuffle, no augmentation, centre crop; unbatched."""
    import tensorflow as tf

    split = splits.splits[name]
    channels_in = _channels(source, split)
    ds = preprocess(examples(source, split, splits.label_map), data, channels_in, centre_crop=True)
    if data.cache:
        ds = ds.cache()
    ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def train_dataset(source, splits, data, seed: int):
    """The training split: cached, shuffled every epoch, balanced, augmented; unbatched."""
    import tensorflow as tf

    split = splits.splits["train"]
    random_crop = bool(data.augment.crop) and stored_size(data) != list(data.image_size)
    channels_in = _channels(source, split)

    def cached(part):
        ds = examples(source, part, splits.label_map)
        ds = preprocess(ds, data, channels_in, centre_crop=not random_crop)
        return ds.cache() if data.cache else ds

    if data.balance == "oversample":
        ds = oversample(split.labels, lambda positions: cached(split.take(positions)),
                        data.shuffle_buffer, seed, fill_caches=data.cache)
    else:
        ds = cached(split)
        if data.shuffle:
            ds = ds.shuffle(min(data.shuffle_buffer, len(split)), seed=seed,
                            reshuffle_each_iteration=True)
    augmenter = build_augmenter(data.augment, list(data.image_size), stored_size(data),
                                data.channels, seed)
    ds = ds.map(_augmented(augmenter), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _channels(source, split) -> int:
    # The pools of one source (TFDS splits of one data set) share their image format.
    return source.pools[split.pools[0] if len(split) else "train"].channels


def _to_float(image, label):
    import tensorflow as tf

    return tf.cast(image, tf.float32), label


def _augmented(augmenter: Callable | None):
    def fn(image, label):
        image, label = _to_float(image, label)
        return (augmenter(image) if augmenter else image), label

    return fn
