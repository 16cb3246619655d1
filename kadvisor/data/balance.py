"""Class balancing of the training split (``data.balance``).

- ``class_weight``: scikit-learn's ``compute_class_weight("balanced")``,
  ``n_samples / (n_classes * count_c)``, returned to the trainer for ``model.fit``.
- ``oversample``: one repeated, shuffled dataset per class, drawn with equal
  probability by ``tf.data.Dataset.sample_from_datasets``; an epoch is cut at the size
  of the training split, so it lasts as many steps as without balancing, and each
  class fills about 1/K of every batch (rare classes repeat, common ones are seen
  partially per epoch). The per-class datasets are always shuffled, whatever
  ``data.shuffle`` says.
- ``undersample``: every class capped at the smallest class count; a choice of
  examples fixed by the seed, made with the other training-set reductions in
  `kadvisor.data.splits.reduce_training`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """``{class_id: weight}`` from ``compute_class_weight("balanced")``.

    Classes absent from ``labels`` get no entry (Keras then weighs them 1).
    """
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(c): float(w) for c, w in zip(present, weights)}


def oversample(
    labels: np.ndarray,
    make_class_dataset: Callable[[np.ndarray], "object"],
    shuffle_buffer: int,
    seed: int,
    *,
    fill_caches: bool = False,
):
    """A dataset drawing every present class with equal probability.

    Args:
        labels: Labels of the training split.
        make_class_dataset: Maps the positions of one class's examples in ``labels``
            to a (cached) dataset of them.
        shuffle_buffer: Most examples each per-class shuffle buffer holds.
        seed: Seeds per-class shuffles and the class draw; the draw is re-randomised
            every epoch.
        fill_caches: Read each per-class dataset once now. An epoch reads only part of
            a common class, and ``Dataset.cache`` discards a partly read cache, so
            without this the per-class caches would never fill. Costs one pass over
            the training split (for TFDS sources, one scan of its records per class).

    Returns:
        A ``tf.data.Dataset`` of ``len(labels)`` examples per iteration.
    """
    import tensorflow as tf

    per_class = []
    for c in np.unique(labels):
        positions = np.flatnonzero(labels == c)
        ds = make_class_dataset(positions)
        if fill_caches:
            for _ in ds.batch(1024):
                pass
        ds = ds.repeat()
        ds = ds.shuffle(min(shuffle_buffer, len(positions)), seed=seed + int(c) + 1,
                        reshuffle_each_iteration=True)
        per_class.append(ds)
    mixed = tf.data.Dataset.sample_from_datasets(
        per_class,
        weights=[1.0 / len(per_class)] * len(per_class),
        seed=seed,
        rerandomize_each_iteration=True,
    )
    return mixed.take(len(labels))
