"""``[search.space]`` distributions as KerasTuner hyperparameters, and back.

Each searched recipe path becomes one KerasTuner hyperparameter named by the path, so
a trial's ``hyperparameters.values`` reads ``{"optimizer.learning_rate": 3e-4, ...}``
and is, after `decode`, a recipe patch in the one language of dotted paths.
"""

from __future__ import annotations

import json
from typing import Any

from kadvisor.recipe.search_space import Distribution

# KerasTuner's own bookkeeping values in a trial (Hyperband's budget and lineage).
TUNER_PREFIX = "tuner/"


def _encode(value: Any) -> Any:
    # A KerasTuner Choice holds int, float, str or bool only: a list value such as
    # data.image_size = [32, 32] travels as its JSON text.
    return json.dumps(value) if isinstance(value, list) else value


def declare(hp, dist: Distribution) -> Any:
    """Registers ``dist`` on a `keras_tuner.HyperParameters` and returns its value.

    Args:
        hp: The trial's (or the search space's) ``HyperParameters``.
        dist: A parsed ``[search.space]`` entry.

    Returns:
        The encoded value KerasTuner holds for the path (see `decode`).
    """
    if dist.kind == "bool":
        return hp.Boolean(dist.path)
    if dist.kind == "choice":
        return hp.Choice(dist.path, [_encode(v) for v in dist.choices])
    sampling = "log" if dist.kind == "log_uniform" else "linear"
    if dist.integer:
        return hp.Int(dist.path, int(dist.low), int(dist.high), step=dist.step and int(dist.step), sampling=sampling)
    return hp.Float(dist.path, float(dist.low), float(dist.high), step=dist.step, sampling=sampling)


def decode(dist: Distribution, value: Any) -> Any:
    """Turns a value KerasTuner holds back into a recipe value."""
    if dist.kind == "choice" and any(isinstance(c, list) for c in dist.choices):
        return json.loads(value)
    if dist.kind == "bool":
        return bool(value)
    return int(value) if dist.integer else value


def trial_patch(space: list[Distribution], hp) -> dict[str, Any]:
    """Declares every searched path on ``hp`` and returns ``{path: recipe value}``."""
    return {dist.path: decode(dist, declare(hp, dist)) for dist in space}


def searched_values(space: list[Distribution], values: dict) -> dict[str, Any]:
    """The recipe patch of a finished trial's ``hyperparameters.values``.

    Paths the trial does not hold (a search space widened after it ran) are left out.
    """
    return {d.path: decode(d, values[d.path]) for d in space if d.path in values}
