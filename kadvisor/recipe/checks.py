"""Cross-field checks: constraints that involve more than one field.

Each check is a small function registered in `CHECKS`; it returns (path, message)
pairs so the loader can point at the line of the offending field.
"""

from __future__ import annotations

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
