"""kadvisor: train Keras image classifiers from a recipe, then ask what to change next.

The package root stays light (no TensorFlow import): `fit` imports training lazily.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "fit", "improve", "load_recipe"]


def fit(recipe, out_dir="runs", **kwargs):
    """Trains a model from a recipe and returns the finished run.

    Args:
        recipe: A `Recipe`, a path to a TOML recipe, or a dict of recipe values.
        out_dir: Parent folder of the new run directory.
        **kwargs: Passed to `kadvisor.training.fit.fit` (``overrides``, ``epochs``,
            ``quiet``, ``printer``, ...).

    Returns:
        The `kadvisor.training.fit.Run` describing the run directory and its metrics.
    """
    from kadvisor.training.fit import fit as _fit

    return _fit(recipe, out_dir, **kwargs)


def improve(recipe, **kwargs):
    """Improves a recipe round by round with the advisor's first actions (``kadvisor improve``).

    Args:
        recipe: Path to a TOML recipe (its comments are kept in ``best.toml``).
        **kwargs: Passed to `kadvisor.improving.loop.improve` (``out``, ``overrides``,
            ``rounds``, ``budget``, ``say``, ...).

    Returns:
        The `kadvisor.improving.loop.ImproveResult`: ``rows`` (one per round), ``best``
        (the incumbent round) and ``best_recipe`` (best.toml as a `Recipe`).
    """
    from kadvisor.improving.loop import improve as _improve

    return _improve(recipe, **kwargs)


def load_recipe(path, overrides=()):
    """Loads and validates a recipe file (see `kadvisor.recipe.load_recipe`)."""
    from kadvisor.recipe import load_recipe as _load

    return _load(path, overrides)
