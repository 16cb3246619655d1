"""Data sources behind `kadvisor.registry.SOURCES`: ``scheme:location`` → labelled pools.

A recipe names its data as ``data.source = "scheme:location"``. Each scheme is a loader
registered here that returns a `SourceData`: the class names and one or more pools
(the labels of every example plus a function that streams chosen examples as
``(uint8 image HWC, label)``). Splitting then works on the labels alone, and only the
examples a split selects are ever decoded.

The recipe validator imports this module to list the scheme names, so nothing here
imports TensorFlow, TFDS or scikit-learn at import time.
"""

from __future__ import annotations

import errno
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from kadvisor.errors import DataError
from kadvisor.registry import SOURCES, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclass
class Pool:
    """Labelled examples of one source split, decoded only when streamed.

    Attributes:
        labels: int64 label of every example, in the source's order.
        make_dataset: Maps a sorted array of example indices to a ``tf.data.Dataset``
            of ``(image uint8 (H, W, C), label)``, in source order.
        channels: Channels of the streamed images (1, 2, 3 or 4).
    """

    labels: np.ndarray
    make_dataset: Callable[[np.ndarray], "tf.data.Dataset"]
    channels: int


@dataclass
class SourceData:
    """What a loader returns.

    Attributes:
        class_names: Name of each label id.
        pools: ``"train"`` always; ``"validation"`` / ``"test"`` when the source
            defines those splits itself (TFDS split names), else they are carved
            from ``"train"``.
        skipped: Files that could not be read and were left out.
    """

    class_names: list[str]
    pools: dict[str, Pool]
    skipped: list[str] = field(default_factory=list)


Loader = Callable[[str, object, int], SourceData]


def load_source(data, seed: int) -> SourceData:
    """Loads ``data.source`` with its registered loader.

    Args:
        data: The recipe's `Data` section.
        seed: The recipe seed (synthetic sources use it).

    Returns:
        The `SourceData`.

    Raises:
        DataError: for an unknown scheme, a missing path, or unreadable data.
    """
    scheme, sep, location = data.source.partition(":")
    if not sep or scheme not in SOURCES:
        names = SOURCES.names()
        raise DataError(
            f"data.source: unknown data source {data.source!r}"
            f"{did_you_mean(scheme, names)}; expected one of "
            f"{', '.join(n + ':...' for n in names)}"
        )
    loader: Loader = SOURCES.get(scheme)
    return loader(location, data, seed)


def array_pool(images: np.ndarray, labels: np.ndarray) -> Pool:
    """A pool over in-memory images ``(N, H, W, C)`` uint8 and labels ``(N,)``."""

    def make_dataset(indices: np.ndarray):
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices((images[indices], labels[indices]))

    return Pool(np.asarray(labels, np.int64), make_dataset, int(images.shape[-1]))


def _as_images(images: np.ndarray, where: str) -> np.ndarray:
    """Checks and converts an image array to uint8 NHWC in [0, 255].

    Integer arrays are clipped to [0, 255]; float arrays whose maximum is at most 1
    are taken to be in [0, 1] and scaled by 255, other float arrays are taken to be
    in [0, 255] already.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    # A zero-sized image would pass here and fail only in training's first step.
    if images.ndim != 4 or images.shape[-1] not in (1, 2, 3, 4) or 0 in images.shape[:3]:
        raise DataError(
            f"{where}: images have shape {images.shape}; expected (N, H, W) or "
            f"(N, H, W, C) with C in 1..4 and N, H, W > 0"
        )
    if np.issubdtype(images.dtype, np.floating):
        if images.size and float(np.nanmax(images)) <= 1.0:
            images = images * 255.0
        images = np.rint(images)
    elif not np.issubdtype(images.dtype, np.integer) and images.dtype != bool:
        raise DataError(f"{where}: images have dtype {images.dtype}; expected integers or floats")
    return np.clip(images, 0, 255).astype(np.uint8)


@SOURCES.register("sklearn")
def load_sklearn(location: str, data, seed: int) -> SourceData:
    """``sklearn:digits``: scikit-learn's 1,797 8×8 digits, scaled from 0–16 to 0–255.

    Ships with scikit-learn, so it works offline; it is the embedded default source.
    """
    if location != "digits":
        raise DataError(
            f"data.source: unknown scikit-learn data set {location!r}; expected 'sklearn:digits'"
        )
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    names = [str(n) for n in digits.target_names]
    return SourceData(names, {"train": array_pool(images, labels)})


@SOURCES.register("npz")
def load_npz(location: str, data, seed: int) -> SourceData:
    """``npz:PATH``: arrays ``x`` or ``images``, ``y`` or ``labels``, optional ``class_names``.

    Images are (N, H, W) or (N, H, W, C); see `_as_images` for value ranges. Labels
    are integer ids, or strings (then the sorted distinct strings are the classes).
    """
    path = Path(location).expanduser()
    where = f"data.source npz file '{path}'"
    if not path.is_file():
        raise DataError(f"{where} does not exist; expected a .npz file with arrays x and y")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as e:  # numpy raises several types for a bad archive
        raise DataError(f"{where} cannot be read as .npz: {e}") from None
    x = next((arrays[k] for k in ("x", "images") if k in arrays), None)
    y = next((arrays[k] for k in ("y", "labels") if k in arrays), None)
    if x is None or y is None:
        raise DataError(
            f"{where} has arrays {sorted(arrays)}; expected 'x' (or 'images') and "
            f"'y' (or 'labels')"
        )
    images = _as_images(x, where)
    y = np.asarray(y).reshape(-1)
    if len(y) != len(images):
        raise DataError(f"{where} has {len(images)} images but {len(y)} labels; expected equal")
    if y.dtype.kind in "US":
        names = sorted(set(y.tolist()))
        labels = np.searchsorted(np.array(names), y).astype(np.int64)
    else:
        labels = y.astype(np.int64)
        if labels.min() < 0:
            raise DataError(f"{where} has negative label {labels.min()}; expected ids >= 0")
        given = arrays.get("class_names")
        names = [str(n) for n in given] if given is not None else None
        names = names or [str(i) for i in range(int(labels.max()) + 1)]
        if labels.max() >= len(names):
            raise DataError(
                f"{where} has label {labels.max()} but {len(names)} class_names; "
                f"expected one name per label id"
            )
    return SourceData(names, {"train": array_pool(images, labels)})


@SOURCES.register("synthetic")
def load_synthetic(location: str, data, seed: int) -> SourceData:
    """``synthetic:textures``: co-occurrence textures (`kadvisor.data.synthetic`), seeded.

    Generated at the model's input size when it is square and a multiple of the
    4-pixel tile, else at 32×32 (the pipeline then resizes), always with 3 channels.
    """
    if location != "textures":
        raise DataError(
            f"data.source: unknown synthetic data set {location!r}; expected 'synthetic:textures'"
        )
    from kadvisor.data.synthetic import make_cooccurrence_textures

    height, width = data.resize_to or data.image_size
    size = height if height == width and height % 4 == 0 else 32
    images, labels, names = make_cooccurrence_textures(size=size, channels=3, seed=seed)
    return SourceData(list(names), {"train": array_pool(images, np.asarray(labels))})


@SOURCES.register("folder")
def load_folder(location: str, data, seed: int) -> SourceData:
    """``folder:PATH``: one sub-folder per class holding jpg/png/bmp/gif images.

    Sub-folders are searched recursively; class names are the sorted sub-folder names.
    Every file is checked up front with PIL's ``Image.verify()`` (reads headers and
    checksums, not pixels); files that fail are left out and listed in a warning.
    Images of any size and of 1, 3 or 4 channels are decoded to RGB by TensorFlow.

    Raises:
        DataError: when the folder is missing, has no class sub-folders or no image,
            or when every image fails to open.
    """
    root = Path(location).expanduser()
    expected = "expected a folder with one sub-folder of images per class"
    if not root.is_dir():
        raise DataError(f"data.source folder '{root}' {not_a_folder(root)}; {expected}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"data.source folder '{root}' has no sub-folders; {expected}")
    files = {d.name: image_files(d) for d in class_dirs}
    if not any(files.values()):
        raise DataError(
            f"data.source folder '{root}' has no {'/'.join(IMAGE_EXTENSIONS)} files "
            f"in its sub-folders; {expected}"
        )
    names, paths, labels, skipped, empty = [], [], [], [], []
    for name, class_files in files.items():
        readable = [opens(f) for f in class_files]
        skipped += [str(f) for f, ok in zip(class_files, readable) if not ok]
        good = [str(f) for f, ok in zip(class_files, readable) if ok]
        if good:
            paths += good
            labels += [len(names)] * len(good)
            names.append(name)
        elif not data.classes or name in data.classes:
            empty.append(name)
    if not paths:
        raise DataError(
            f"data.source folder '{root}': none of its {len(skipped)} image files can be "
            f"read, e.g. '{skipped[0]}'; expected image files that PIL can open"
        )
    if empty:
        # A class without images can be neither split nor learned; dropping it quietly
        # would train a different task than the folder describes.
        raise DataError(
            f"data.source folder '{root}': class folder(s) {', '.join(repr(n) for n in empty)} "
            f"have no readable image; expected at least one per class (add images, remove "
            f"the folder, or leave it out with data.classes)"
        )
    if skipped:
        warnings.warn(
            f"data.source folder '{root}': skipped {len(skipped)} unreadable image "
            f"file(s): {', '.join(skipped)}",
            UserWarning,
            stacklevel=2,
        )
    return SourceData(names, {"train": _file_pool(np.array(paths), np.array(labels))}, skipped)


def not_a_folder(path: Path) -> str:
    """Why ``path`` is not a folder, completing "'PATH' ..." ("is a file", "does not exist")."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a loop of symbolic links"
        if os.path.islink(path):
            return f"is a symbolic link to '{os.readlink(path)}', which does not exist"
        return "does not exist" if e.errno == errno.ENOENT else f"cannot be read ({e.strerror})"
    return "is a file, not a folder"


def image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )


def opens(path: Path) -> bool:
    """Whether PIL recognises and verifies ``path`` (headers and checksums, no pixels)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return False


def _file_pool(paths: np.ndarray, labels: np.ndarray) -> Pool:
    def make_dataset(indices: np.ndarray):
        import tensorflow as tf

        def decode(path, label):
            image = tf.io.decode_image(
                tf.io.read_file(path), channels=3, expand_animations=False
            )
            image.set_shape([None, None, 3])
            return image, label

        ds = tf.data.Dataset.from_tensor_slices((paths[indices], labels[indices]))
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        # Safety net for a file that passed PIL's verify() but that TensorFlow cannot
        # decode: drop it (TF logs a warning) rather than crash mid-epoch.
        return ds.ignore_errors(log_warning=True)

    return Pool(labels.astype(np.int64), make_dataset, 3)


@SOURCES.register("tfds")
def load_tfds(location: str, data, seed: int) -> SourceData:
    """``tfds:NAME``: ``tfds.load(NAME, split=..., data_dir=..., as_supervised=True)``.

    Downloads and prepares the data set on first use (needs internet), then reads it
    from ``data.data_dir`` (or the TFDS default). ``data.train_split`` is always
    loaded; ``data.validation_split`` / ``data.test_split`` are loaded when named, else
    carved from the training split. Labels are read without decoding images
    (``SkipDecoding``); images are decoded only when a split streams them.
    """
    import tensorflow_datasets as tfds

    where = f"data.source tfds data set {location!r}"
    data_dir = data.data_dir or None
    try:
        builder = tfds.builder(location, data_dir=data_dir)
    except Exception as e:  # DatasetNotFoundError, bad config or version
        raise DataError(f"{where} cannot be found: {_first_line(e)}") from None
    info = builder.info
    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise DataError(
            f"{where} has no (image, label) supervised keys; expected an image "
            f"classification data set"
        )
    image_key, label_key = keys
    label_feature = info.features[label_key]
    if not hasattr(label_feature, "names"):
        raise DataError(f"{where}: feature {label_key!r} is not a class label")
    image_feature = info.features[image_key]
    skip = isinstance(image_feature, tfds.features.Image)
    pools = {}
    for role, split in (
        ("train", data.train_split),
        ("validation", data.validation_split),
        ("test", data.test_split),
    ):
        if split:
            pools[role] = _tfds_pool(location, split, data_dir, keys, image_feature, skip, where)
    return SourceData(list(label_feature.names), pools)


def _tfds_pool(name, split, data_dir, keys, image_feature, skip: bool, where: str) -> Pool:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    try:
        ds = tfds.load(
            name,
            split=split,
            data_dir=data_dir,
            as_supervised=True,
            shuffle_files=False,  # a fixed order, so indices mean the same example
            # Labels are read without decoding images; decoded when streamed.
            decoders={keys[0]: tfds.decode.SkipDecoding()} if skip else None,
        )
    except Exception as e:  # download failure offline, unknown split name, ...
        raise DataError(f"{where}, split {split!r}, cannot be loaded: {_first_line(e)}") from None
    batches = ds.map(lambda image, label: label).batch(8192)
    labels = np.concatenate([b for b in batches.as_numpy_iterator()] or [np.zeros(0)])
    labels = labels.astype(np.int64)
    if len(labels) == 0:
        raise DataError(f"{where}, split {split!r}, is empty; expected labelled examples")

    def make_dataset(indices: np.ndarray):
        keep = np.zeros(len(labels), bool)
        keep[indices] = True
        out = ds
        if not keep.all():
            mask = tf.constant(keep)
            out = ds.enumerate().filter(lambda i, example: mask[i]).map(lambda i, example: example)
        if skip:
            out = out.map(
                lambda image, label: (image_feature.decode_example(image), label),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        return out

    return Pool(labels, make_dataset, int(image_feature.shape[-1]))



def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
