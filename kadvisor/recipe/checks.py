"""Cross-field checks: constraints that involve more than one field.

Each check is a small function registered in `CHECKS`; it returns (path, message)
pairs so the loader can point at the line of the offending field.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

from kadvisor.recipe.paths import show

Problem = tuple[str, str]
CHECKS: list[Callable[[object], Iterator[Problem]]] = []


def check(fn: Callable[[object], Iterator[Problem]]) -> Callable[[object], Iterator[Problem]]:
    """Registers a cross-field check."""
    CHECKS.append(fn)
    return fn


@check
def held_out_fractions(recipe) -> Iterator[Problem]:
    data = recipe.data
    carved = (0 if data.validation_split else data.val_fraction) + (
        0 if data.test_split else data.test_fraction
    )
    if carved >= 0.9:
        yield (
            "data.val_fraction",
            f"data.val_fraction + data.test_fraction must leave at least 10% for training, "
            f"got {data.val_fraction:g} + {data.test_fraction:g}",
        )


@check
def multistep_boundaries(recipe) -> Iterator[Problem]:
    steps = recipe.schedule.steps
    if any(b <= a for a, b in zip(steps, steps[1:])):
        yield ("schedule.steps", f"schedule.steps must be increasing, got {steps}")


@check
def backbone_weights(recipe) -> Iterator[Problem]:
    weights = recipe.model.weights
    if weights not in ("imagenet", "none") and not weights.endswith(".h5"):
        yield (
            "model.weights",
            f"model.weights must be 'imagenet', 'none' or a path to a .weights.h5 file, "
            f"got {show(weights)}",
        )


@check
def stage_trainable(recipe) -> Iterator[Problem]:
    for i, stage in enumerate(recipe.stages):
        t = stage.trainable
        if t not in ("head", "all") and not (t.startswith("from:") and len(t) > 5):
            yield (
                f"stages[{i}].trainable",
                f"stages[{i}].trainable must be 'head', 'all' or 'from:LAYER_NAME', got {show(t)}",
            )


@check
def source_scheme(recipe) -> Iterator[Problem]:
    from kadvisor.registry import SOURCES, did_you_mean

    scheme, sep, rest = recipe.data.source.partition(":")
    if not sep or scheme not in SOURCES:
        names = SOURCES.names()
        yield (
            "data.source",
            f"data.source must be one of {', '.join(n + ':...' for n in names)}, "
            f"got {show(recipe.data.source)}{did_you_mean(scheme, names)}",
        )


@check
def search_space(recipe) -> Iterator[Problem]:
    from kadvisor.recipe.search_space import parse_space

    yield from parse_space(recipe.search.space, type(recipe), problems_only=True)


# What the compiled model logs each epoch (training/loop.py compiles with
# metrics=["accuracy"]), with and without the "val_" prefix; tests/test_fit.py checks
# that a real history.csv has every one of them, so the two cannot drift apart.
LOGGED_METRICS = ("loss", "accuracy")
_MONITORS = (*LOGGED_METRICS, *(f"val_{m}" for m in LOGGED_METRICS))


@check
def logged_metrics(recipe) -> Iterator[Problem]:
    # A monitor nothing logs makes Keras warn once and keep the *last* epoch as "best".
    names = ", ".join(f"'{m}'" for m in _MONITORS)
    for path in ("train.monitor", "search.objective"):
        value = recipe.get(path)
        if value not in _MONITORS:
            yield path, f"{path} must be a metric the model logs, one of {names}, got {show(value)}"


# The smallest first feature map of the built-in and Keras backbones has 16-64 channels;
# 32 keeps the estimate a lower bound for most, so a refused recipe really cannot run.
_FIRST_FEATURE_CHANNELS = 32


def batch_bytes(recipe) -> int:
    """A lower bound on the memory one training batch needs: the float32 input batch at
    the largest of ``data.image_size`` / ``data.resize_to`` plus a first feature map."""
    data = recipe.data
    height, width = max(data.image_size, data.resize_to or data.image_size, key=lambda s: s[0] * s[1])
    return recipe.train.batch_size * height * width * (data.channels + _FIRST_FEATURE_CHANNELS) * 4


def physical_memory() -> int | None:
    """This machine's RAM in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


@check
def fits_in_memory(recipe) -> Iterator[Problem]:
    # Checked before any work so a recipe that cannot run is refused by `recipe check`
    # too, instead of an out-of-memory traceback minutes into `fit`.
    need, have = batch_bytes(recipe), physical_memory()
    if have and need > have:
        yield (
            "data.image_size",
            f"data.image_size {recipe.data.image_size} with train.batch_size {recipe.train.batch_size} "
            f"needs at least {_size(need)} for one batch (input + first feature map, float32) but this "
            f"machine has {_size(have)} of memory; expected a smaller data.image_size or train.batch_size",
        )


@check
def search_settings(recipe) -> Iterator[Problem]:
    # Only a recipe that searches is held to them: `fit` ignores [search].
    search = recipe.search
    if not search.space:
        return
    if search.classes and recipe.data.classes:
        outside = [c for c in search.classes if c not in recipe.data.classes]
        if outside:
            yield ("search.classes", f"search.classes must be a subset of data.classes "
                   f"{recipe.data.classes}, got {outside} outside it")
    if search.algorithm != "hyperband":
        return
    if "train.epochs" in search.space:
        yield ("search.space.train.epochs",
               "search.space.train.epochs: Hyperband sets each trial's epochs itself "
               "(up to search.max_epochs); expected no train.epochs in the space, or "
               "search.algorithm = 'random' or 'bayesian'")
    if recipe.stages:
        available = sum(recipe.for_stage(i).train.epochs for i in range(len(recipe.stages)))
        if search.max_epochs > available:
            yield ("search.max_epochs",
                   f"search.max_epochs must be at most the {available} epochs of the recipe's "
                   f"stages (Hyperband trains along them), got {search.max_epochs}")
