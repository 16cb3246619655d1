"""Stratified train / validation / test splits, class subsets and training-set reductions.

Everything here works on label arrays only (numpy and scikit-learn); the pipeline turns
the chosen examples into ``tf.data`` datasets afterwards. The order of operations:

1. test split: the source's own (``data.test_split``), else a stratified
   ``data.test_fraction`` carved FIRST from all labelled data — with scikit-learn's
   ``train_test_split(stratify=y, random_state=seed)``, so ``sklearn:digits`` gets the
   standard stratified 20% test split;
2. validation split: fold ``k`` of ``StratifiedKFold(K, shuffle=True, random_state=seed)``
   over the remaining pool when K-fold is asked for, else the source's own, else a
   stratified ``data.val_fraction`` of the whole carved from the rest;
3. ``data.classes``: every split keeps only those classes, re-indexed in the listed
   order (so the test examples of a subset run are those of the full run);
4. the training split only: ``data.max_per_class``, then ``data.imbalance``, then
   ``data.subsample``, then ``data.balance = "undersample"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kadvisor.errors import DataError
from kadvisor.registry import did_you_mean

SPLIT_NAMES = ("train", "validation", "test")


@dataclass
class Split:
    """The examples of one split.

    Attributes:
        pools: Name of the source pool of each example ("train", "validation", "test").
        index: Index of each example within its pool.
        labels: int64 label of each example (re-indexed after a class subset).
    """

    pools: np.ndarray
    index: np.ndarray
    labels: np.ndarray

    @classmethod
    def whole(cls, pool: str, labels: np.ndarray) -> "Split":
        """All examples of one pool."""
        n = len(labels)
        return cls(np.full(n, pool, dtype=object), np.arange(n), np.asarray(labels, np.int64))

    @classmethod
    def concat(cls, parts: list["Split"]) -> "Split":
        """The examples of several splits together."""
        columns = ("pools", "index", "labels")
        return cls(*(np.concatenate([getattr(p, c) for p in parts]) for c in columns))

    def take(self, positions: np.ndarray) -> "Split":
        """The examples at ``positions`` (kept in ascending order)."""
        positions = np.sort(np.asarray(positions, np.int64))
        return Split(self.pools[positions], self.index[positions], self.labels[positions])

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self, num_classes: int) -> np.ndarray:
        """Number of examples of each class."""
        return np.bincount(self.labels, minlength=num_classes)[:num_classes]


@dataclass
class Splits:
    """The result of `make_splits`.

    Attributes:
        splits: "train" always; "validation" and "test" when present.
        class_names: Names of the (possibly subset) classes, index = label.
        label_map: Maps a source label to its new label (-1 for a dropped class).
        fold: K-fold fold index, or None.
        num_folds: K-fold fold count, or None.
    """

    splits: dict[str, Split]
    class_names: list[str]
    label_map: np.ndarray
    fold: int | None = None
    num_folds: int | None = None


def make_splits(
    source,
    data,
    seed: int,
    *,
    fold: int | None = None,
    num_folds: int | None = None,
) -> Splits:
    """Splits a loaded source as the recipe's ``[data]`` section asks.

    Args:
        source: A `kadvisor.data.sources.SourceData`.
        data: The recipe's `Data` section.
        seed: The recipe seed; every random choice here derives from it.
        fold: K-fold fold whose held-out part is the validation split.
        num_folds: Number of K-fold folds (>= 2) when ``fold`` is given.

    Returns:
        The `Splits`.

    Raises:
        DataError: naming the recipe field when a split cannot be made.
    """
    pools = {name: pool.labels for name, pool in source.pools.items()}
    rest = Split.whole("train", pools["train"])
    n_labelled = len(rest)
    out: dict[str, Split] = {}
    if "test" in pools:
        out["test"] = Split.whole("test", pools["test"])
    elif data.test_fraction > 0:
        rest, out["test"] = carve(rest, data.test_fraction, seed, "data.test_fraction")
    if fold is not None:
        # The source's own validation split joins the pool the folds are drawn from.
        own = [Split.whole("validation", pools["validation"])] if "validation" in pools else []
        pool = Split.concat([rest, *own])
        rest, out["validation"] = kfold(pool, fold, num_folds, seed)
    elif "validation" in pools:
        out["validation"] = Split.whole("validation", pools["validation"])
    elif data.val_fraction > 0:
        n_val = max(1, round(data.val_fraction * n_labelled))
        rest, out["validation"] = carve(rest, n_val, seed, "data.val_fraction")
    out["train"] = rest

    label_map, names = select_classes(source.class_names, data.classes)
    for name, split in out.items():
        mapped = label_map[split.labels]
        kept = split.take(np.flatnonzero(mapped >= 0))
        kept.labels = label_map[kept.labels]
        out[name] = kept
    out["train"] = reduce_training(out["train"], data, len(names), seed)
    if len(out["train"]) == 0:
        raise DataError(f"data.source {data.source!r}: the training split is empty")
    ordered = {name: out[name] for name in SPLIT_NAMES if name in out}
    return Splits(ordered, names, label_map, fold, num_folds if fold is not None else None)


def carve(split: Split, size: float | int, seed: int, field_name: str) -> tuple[Split, Split]:
    """Holds out a stratified part of ``split`` with ``train_test_split``.

    Args:
        split: The examples to split.
        size: Fraction (float) or number (int) of examples held out.
        seed: ``random_state``.
        field_name: Recipe field named in errors.

    Returns:
        ``(kept, held_out)``.
    """
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(split))
    try:
        kept, held = train_test_split(
            positions, test_size=size, stratify=split.labels, random_state=seed
        )
    except ValueError as e:  # too few examples of a class, or fewer than classes
        raise DataError(
            f"{field_name}: cannot hold out {size:g} of {len(split)} examples stratified by "
            f"class ({np.bincount(split.labels).min()} in the smallest class): {e}"
        ) from None
    return split.take(kept), split.take(held)


def kfold(pool: Split, fold: int, num_folds: int | None, seed: int) -> tuple[Split, Split]:
    """Fold ``fold`` of ``StratifiedKFold(num_folds, shuffle=True, random_state=seed)``.

    Returns:
        ``(train, validation)``: the other folds and the held-out fold.
    """
    from sklearn.model_selection import StratifiedKFold

    if num_folds is None or num_folds < 2 or not 0 <= fold < num_folds:
        raise DataError(
            f"validation.kfold: fold {fold} of {num_folds} folds; expected "
            f"num_folds >= 2 and 0 <= fold < num_folds"
        )
    folds = StratifiedKFold(num_folds, shuffle=True, random_state=seed)
    try:
        train, held = list(folds.split(np.zeros(len(pool)), pool.labels))[fold]
    except ValueError as e:
        raise DataError(
            f"validation.kfold: cannot make {num_folds} stratified folds of {len(pool)} "
            f"examples: {e}"
        ) from None
    return pool.take(train), pool.take(held)


def select_classes(class_names: list[str], wanted: list[str]) -> tuple[np.ndarray, list[str]]:
    """Maps source labels to the labels of the ``data.classes`` subset.

    Returns:
        ``(label_map, names)``: ``label_map[old] = new`` (-1 when dropped) and the kept
        names in the listed order; all classes when ``wanted`` is empty.
    """
    if not wanted:
        return np.arange(len(class_names), dtype=np.int64), list(class_names)
    label_map = np.full(len(class_names), -1, np.int64)
    for new, name in enumerate(wanted):
        if name not in class_names:
            same_but_case = [n for n in class_names if n.lower() == str(name).lower()]
            hint = (f" — did you mean {same_but_case[0]!r}?" if same_but_case
                    else did_you_mean(name, class_names))
            raise DataError(
                f"data.classes: unknown class {name!r}{hint}; "
                f"expected names from: {', '.join(class_names[:20])}"
                f"{', ...' if len(class_names) > 20 else ''}"
            )
        if label_map[class_names.index(name)] >= 0:
            raise DataError(
                f"data.classes: class {name!r} is listed twice; expected distinct names"
            )
        label_map[class_names.index(name)] = new
    return label_map, list(wanted)


def reduce_training(train: Split, data, num_classes: int, seed: int) -> Split:
    """Applies max_per_class, imbalance, subsample and undersample to the training split."""
    counts = train.counts(num_classes)
    if data.max_per_class:
        train = take_per_class(train, np.minimum(counts, data.max_per_class), seed, "max_per_class")
    if data.imbalance and num_classes > 1:
        keep = imbalanced_counts(train.counts(num_classes), data.imbalance)
        train = take_per_class(train, keep, seed, "imbalance")
    if data.subsample < 1:
        if data.subsample <= 0:
            raise DataError(
                f"data.subsample: got {data.subsample:g}; expected a fraction in (0, 1]"
            )
        counts = train.counts(num_classes)
        keep = np.where(counts > 0, np.maximum(1, np.rint(counts * data.subsample)), 0)
        train = take_per_class(train, keep.astype(np.int64), seed, "subsample")
    if data.balance == "undersample":
        counts = train.counts(num_classes)
        smallest = counts[counts > 0].min()
        train = take_per_class(train, np.minimum(counts, smallest), seed, "undersample")
    return train


def imbalanced_counts(counts: np.ndarray, ratio: float) -> np.ndarray:
    """Per-class counts decaying exponentially from 1 (first class) to ``ratio`` (last).

    Class ``i`` of ``K`` keeps ``ratio ** (i / (K - 1))`` of its examples (at least
    one), so from a balanced source the smallest/largest class ratio is ``ratio``.
    """
    k = len(counts)
    keep = counts * ratio ** (np.arange(k) / max(k - 1, 1))
    return np.where(counts > 0, np.maximum(1, np.rint(keep)), 0).astype(np.int64)


def take_per_class(split: Split, keep: np.ndarray, seed: int, purpose: str) -> Split:
    """Keeps ``keep[c]`` random examples of each class ``c``.

    The choice is a per-class permutation seeded by ``seed`` and ``purpose``, so a
    smaller count keeps a subset of what a larger one keeps (subsamples are nested).
    """
    rng = np.random.default_rng([seed, sum(map(ord, purpose))])
    chosen = []
    for c, n in enumerate(keep):
        members = np.flatnonzero(split.labels == c)
        chosen.append(members[rng.permutation(len(members))[: int(n)]])
    return split.take(np.concatenate(chosen) if chosen else np.zeros(0, np.int64))
