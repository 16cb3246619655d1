"""`prepare_data`: a recipe's ``[data]`` section → training, validation and test datasets.

This is what the trainer and the tuner call; it ties the source registry, the splits,
the balancing and the ``tf.data`` pipeline together and records the facts
(`DataInfo`) that go into ``data.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kadvisor.data.balance import class_weights
from kadvisor.data.info import DataInfo
from kadvisor.data.pipeline import check_sizes, eval_dataset, train_dataset
from kadvisor.data.sources import load_source
from kadvisor.data.splits import SPLIT_NAMES, make_splits
from kadvisor.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf


@dataclass
class DataBundle:
    """The datasets of one run.

    Attributes:
        train: Shuffled, augmented, (batched), prefetched ``(image, label)`` pairs:
            float32 images in [0, 255] of shape ``info.image_shape``, int32 labels.
        validation: Unshuffled, unaugmented, or None when there is no validation split.
        test: Like ``validation``, or None when there is no test split.
        info: The facts for ``data.json``.
        class_weight: ``{class_id: weight}`` for ``model.fit`` with
            ``data.balance = "class_weight"``, else None.
        batch_size: The batch size, or None for an unbatched bundle.
    """

    train: "tf.data.Dataset"
    validation: "tf.data.Dataset | None"
    test: "tf.data.Dataset | None"
    info: DataInfo
    class_weight: dict[int, float] | None
    batch_size: int | None = None

    def batch(self, batch_size: int) -> "DataBundle":
        """Returns a copy with every dataset batched (``batch_size`` > 0) and prefetched.

        For the tuner: ``prepare_data(recipe, batched=False)`` once, then
        ``bundle.batch(hp_batch_size)`` inside ``HyperModel.fit``. The last batch may
        be smaller.

        Raises:
            ValueError: when the bundle is already batched.
        """
        if self.batch_size is not None:
            raise ValueError(f"DataBundle is already batched (batch_size={self.batch_size})")
        import tensorflow as tf

        def batched(ds):
            return None if ds is None else ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        return dataclasses.replace(
            self,
            train=batched(self.train),
            validation=batched(self.validation),
            test=batched(self.test),
            batch_size=batch_size,
        )


def prepare_data(
    recipe,
    *,
    batch_size: int | None = None,
    batched: bool = True,
    fold: int | None = None,
    num_folds: int | None = None,
) -> DataBundle:
    """Loads, splits and feeds the data a recipe describes.

    Args:
        recipe: A `kadvisor.recipe.Recipe`.
        batch_size: Examples per batch; defaults to ``recipe.train.batch_size``.
        batched: False returns unbatched datasets (batch later with `DataBundle.batch`).
        fold: K-fold fold (0-based) whose held-out part becomes the validation split;
            None (the default) splits by ``data.val_fraction`` even when
            ``validation.kfold`` is set — the caller loops over the folds.
        num_folds: Number of folds; defaults to ``recipe.validation.kfold``.

    Returns:
        The `DataBundle`.

    Raises:
        DataError: with one line naming the recipe field or path at fault.
    """
    data = recipe.data
    source, splits = _load_and_split(recipe, fold, num_folds)
    train_labels = splits.splits["train"].labels
    weights = class_weights(train_labels) if data.balance == "class_weight" else None
    info = DataInfo.from_splits(
        data.source, splits, [*data.image_size, data.channels], data.balance, weights,
        source.skipped,
    )
    datasets = {
        name: eval_dataset(source, splits, name, data)
        for name in ("validation", "test")
        if name in splits.splits
    }
    bundle = DataBundle(
        train=train_dataset(source, splits, data, recipe.seed),
        validation=datasets.get("validation"),
        test=datasets.get("test"),
        info=info,
        class_weight=weights,
    )
    return bundle.batch(batch_size or recipe.train.batch_size) if batched else bundle


def load_split_arrays(
    recipe,
    split: str = "test",
    *,
    fold: int | None = None,
    num_folds: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Materialises one split in memory, as evaluation sees it (no augmentation).

    Args:
        recipe: A `kadvisor.recipe.Recipe`.
        split: "train", "validation" or "test".
        fold: As for `prepare_data`.
        num_folds: As for `prepare_data`.

    Returns:
        ``(x, y)``: float32 ``(N, H, W, C)`` in [0, 255] and int64 ``(N,)`` labels.

    Raises:
        DataError: when the recipe has no such split.
    """
    if split not in SPLIT_NAMES:
        raise DataError(f"split: got {split!r}; expected one of {', '.join(SPLIT_NAMES)}")
    source, splits = _load_and_split(recipe, fold, num_folds)
    if split not in splits.splits:
        raise DataError(
            f"split: the recipe has no {split!r} split (its fraction is 0 and no TFDS split "
            f"is named); expected one of {', '.join(splits.splits)}"
        )
    ds = eval_dataset(source, splits, split, recipe.data).batch(256)
    xs, ys = zip(*((x, y) for x, y in ds.as_numpy_iterator()))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def _load_and_split(recipe, fold, num_folds):
    check_sizes(recipe.data)
    source = load_source(recipe.data, recipe.seed)
    if fold is not None and num_folds is None:
        num_folds = recipe.validation.kfold
    splits = make_splits(source, recipe.data, recipe.seed, fold=fold, num_folds=num_folds)
    return source, splits
