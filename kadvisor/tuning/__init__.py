"""Tuning: KerasTuner searches (Hyperband, random, Bayesian) over recipe fields.

    from kadvisor.tuning import tune
    result = tune("recipes/digits_tune.toml", say=print)   # tuning/digits_tune/
    result.best.values        # {"optimizer.learning_rate": 0.0021, ...}

Engine and algorithms are split as in KerasTuner: `hypermodel` turns a recipe into a
KerasTuner ``HyperModel``, `tuners` picks the algorithm, `search` runs it (alone,
as chief or as worker) and `outputs` writes leaderboard.csv, best.toml and search.png.
Importing this package imports TensorFlow only when `tune` or `confirm` is called.
"""

from kadvisor.tuning.distributed import Role, choose_role


def tune(*args, **kwargs):
    """See `kadvisor.tuning.search.tune`."""
    from kadvisor.tuning.search import tune as run

    return run(*args, **kwargs)


def confirm(*args, **kwargs):
    """See `kadvisor.tuning.confirm.confirm`."""
    from kadvisor.tuning.confirm import confirm as run

    return run(*args, **kwargs)


__all__ = ["Role", "choose_role", "confirm", "tune"]
