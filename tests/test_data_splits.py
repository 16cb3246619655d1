"""Stratified splits, class subsets, training-set reductions, K-fold and balancing."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from kadvisor.data import prepare_data
from kadvisor.data.balance import class_weights
from kadvisor.data.sources import SourceData, array_pool
from kadvisor.data.splits import make_splits
from kadvisor.errors import DataError
from kadvisor.recipe import Recipe, apply_overrides

# 6 classes of unequal size: 40, 47, 54, 61, 68, 75 examples.
LABELS = np.repeat(np.arange(6), 40 + 7 * np.arange(6))


def make_recipe(values: dict) -> Recipe:
    return apply_overrides(Recipe(), {"data.image_size": [8, 8], **values}.items())


def source(labels=LABELS, names=None) -> SourceData:
    """A source whose images are never decoded here: splitting needs labels only."""
    names = names or [f"c{i}" for i in range(labels.max() + 1)]
    return SourceData(names, {"train": array_pool(np.zeros((len(labels), 1, 1, 1), np.uint8), labels)})


def split(values: dict | None = None, seed=0, labels=LABELS, **kwargs):
    return make_splits(source(labels), make_recipe(values or {}).data, seed, **kwargs)


def keys(s) -> set:
    return set(zip(s.pools.tolist(), s.index.tolist()))


def test_splits_are_stratified_within_one_example_per_class():
    result = split()
    counts = np.bincount(LABELS)
    test = result.splits["test"].counts(6)
    assert np.all(np.abs(test - 0.2 * counts) <= 1), test
    rest = counts - test
    validation = result.splits["validation"].counts(6)
    n_val = round(0.1 * len(LABELS))
    assert validation.sum() == n_val
    # carved from what the test split left, in proportion to it
    assert np.all(np.abs(validation - n_val * rest / rest.sum()) <= 1), validation


def test_splits_are_disjoint_and_cover_the_data():
    parts = [keys(s) for s in split().splits.values()]
    assert sum(map(len, parts)) == len(set().union(*parts)) == len(LABELS)


def test_the_digits_test_split_is_the_standard_stratified_split():
    y = load_digits().target
    result = split(seed=42, labels=y)
    _, expected = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=42)
    np.testing.assert_array_equal(result.splits["test"].index, np.sort(expected))


def test_same_seed_same_splits_other_seed_other_splits():
    a, b, c = split(seed=7), split(seed=7), split(seed=8)
    for name in a.splits:
        assert keys(a.splits[name]) == keys(b.splits[name])
    assert keys(a.splits["test"]) != keys(c.splits["test"])


def test_zero_fractions_leave_the_split_out():
    result = split({"data.val_fraction": 0.0, "data.test_fraction": 0.0})
    assert list(result.splits) == ["train"] and len(result.splits["train"]) == len(LABELS)


def test_too_small_a_fraction_to_stratify_is_a_data_error():
    with pytest.raises(DataError, match="data.val_fraction: cannot hold out 2 of"):
        split({"data.val_fraction": 0.005})


def test_classes_subset_reindexes_in_the_listed_order():
    full, subset = split(), split({"data.classes": ["c4", "c1"]})
    assert subset.class_names == ["c4", "c1"]
    for name, part in subset.splits.items():
        assert set(part.labels.tolist()) == {0, 1}
        # same examples as the full run's classes 4 and 1
        kept = full.splits[name].take(np.flatnonzero(np.isin(full.splits[name].labels, [1, 4])))
        assert keys(part) == keys(kept)
        original = LABELS[part.index]
        assert np.all(np.where(part.labels == 0, 4, 1) == original)


def test_unknown_class_is_a_data_error_with_did_you_mean():
    with pytest.raises(DataError) as error:
        split({"data.classes": ["c1", "c9"]})
    assert str(error.value) == "data.classes: unknown class 'c9'; expected names from: c0, c1, c2, c3, c4, c5"
    with pytest.raises(DataError, match="did you mean 'c1'"):
        split({"data.classes": ["C1"]})


def test_subsample_shrinks_training_stratified_and_nested():
    full = split().splits["train"]
    half = split({"data.subsample": 0.5}).splits["train"]
    quarter = split({"data.subsample": 0.25}).splits["train"]
    assert len(half) < len(full) and len(quarter) < len(half)
    assert np.all(np.abs(half.counts(6) - 0.5 * full.counts(6)) <= 0.5)
    assert keys(quarter) <= keys(half) <= keys(full)
    assert keys(split({"data.subsample": 0.5}).splits["test"]) == keys(split().splits["test"])


def test_max_per_class_caps_training_counts():
    counts = split({"data.max_per_class": 35}).splits["train"].counts(6)
    full = split().splits["train"].counts(6)
    assert counts.tolist() == np.minimum(full, 35).tolist()


@pytest.mark.parametrize("ratio", [0.1, 0.5])
def test_imbalance_makes_a_long_tail_with_the_asked_ratio(ratio):
    balanced = np.repeat(np.arange(6), 100)
    counts = split({"data.imbalance": ratio, "data.test_fraction": 0.0, "data.val_fraction": 0.0},
                   labels=balanced).splits["train"].counts(6)
    assert counts[0] == 100 and np.all(np.diff(counts) < 0)
    assert counts.min() / counts.max() == pytest.approx(ratio, abs=0.01)


def test_undersample_caps_every_class_at_the_smallest():
    counts = split({"data.balance": "undersample"}).splits["train"].counts(6)
    smallest = split().splits["train"].counts(6).min()
    assert counts.tolist() == [smallest] * 6


def test_kfold_folds_are_stratified_disjoint_and_keep_the_test_split():
    k = 4
    folds = [split(fold=i, num_folds=k) for i in range(k)]
    held = [keys(f.splits["validation"]) for f in folds]
    pool = keys(folds[0].splits["train"]) | held[0]
    assert sum(map(len, held)) == len(pool) and set().union(*held) == pool
    for i, (f, h) in enumerate(zip(folds, held)):
        assert keys(f.splits["test"]) == keys(folds[0].splits["test"])
        assert not keys(f.splits["train"]) & h
        assert (f.fold, f.num_folds) == (i, k)
    pool_counts = np.bincount(LABELS[[i for _, i in pool]], minlength=6)
    for f in folds:
        assert np.all(np.abs(f.splits["validation"].counts(6) - pool_counts / k) <= 1)


@pytest.mark.parametrize("fold, num_folds", [(5, 5), (-1, 3), (0, 1), (0, None)])
def test_bad_fold_is_a_data_error(fold, num_folds):
    with pytest.raises(DataError, match="validation.kfold"):
        split(fold=fold, num_folds=num_folds)


def test_class_weights_are_scikit_learns():
    labels = split({"data.imbalance": 0.2}).splits["train"].labels
    expected = compute_class_weight("balanced", classes=np.arange(6), y=labels)
    assert class_weights(labels) == pytest.approx(dict(enumerate(expected)))


def test_prepare_data_returns_class_weights_and_records_them():
    recipe = make_recipe({"data.imbalance": 0.2, "data.balance": "class_weight"})
    bundle = prepare_data(recipe)
    counts = np.array(list(bundle.info.splits["train"]["counts"].values()))
    labels = np.repeat(np.arange(10), counts)
    expected = compute_class_weight("balanced", classes=np.arange(10), y=labels)
    assert bundle.class_weight == pytest.approx(dict(enumerate(expected)))
    assert bundle.info.to_json()["class_weight"]["9"] == pytest.approx(expected[9])
    assert bundle.class_weight[9] > 3 * bundle.class_weight[0]


def test_oversampling_balances_every_epoch():
    recipe = make_recipe({"data.imbalance": 0.1, "data.balance": "oversample"})
    bundle = prepare_data(recipe, batch_size=64)
    counts = np.array(list(bundle.info.splits["train"]["counts"].values()))
    n = counts.sum()
    assert counts.min() * 5 < counts.max()  # the training split itself is long-tailed
    # Each drawn label is class c with probability 1/10, so an epoch's count of class c
    # is Binomial(n, 0.1): allow 4.5 standard deviations (two-sided p ~ 1e-5 per class).
    tolerance = 4.5 * np.sqrt(n * 0.1 * 0.9)
    epochs = []
    for _ in range(2):
        labels = np.concatenate([y.numpy() for _, y in bundle.train])
        assert len(labels) == n  # epoch length = training-set size
        drawn = np.bincount(labels, minlength=10)
        assert np.all(np.abs(drawn - n / 10) <= tolerance), drawn
        assert drawn[9] > counts[9]  # the rarest class is repeated
        epochs.append(labels)
    assert not np.array_equal(*epochs)  # the draw is re-randomised every epoch


def test_data_json_facts():
    recipe = make_recipe({"data.subsample": 0.5, "data.classes": ["3", "5", "8"]})
    info = prepare_data(recipe, fold=1, num_folds=3).info.to_json()
    assert info["num_classes"] == 3 and info["class_names"] == ["3", "5", "8"]
    assert info["image_shape"] == [8, 8, 3] and info["source"] == "sklearn:digits"
    assert (info["fold"], info["num_folds"]) == (1, 3) and "class_weight" not in info
    assert set(info["splits"]) == {"train", "validation", "test"}
    for facts in info["splits"].values():
        assert sum(facts["counts"].values()) == facts["size"]
    assert info["splits"]["train"]["size"] < info["splits"]["validation"]["size"] * 2 * 0.75
