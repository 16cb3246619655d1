"""kadvisor: train Keras image classifiers from a recipe, then ask what to change next.

The package root stays light (no TensorFlow import): `fit` imports training lazily.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "fit", "load_recipe"]


def fit(recipe, **kwargs):
    """Trains a model from a recipe and returns the finished run.

    Args:
        recipe: A `Recipe`, a path to a TOML recipe, or a dict of recipe values.
        **kwargs: Passed to `kadvisor.training.fit.fit` (e.g. ``out_dir``, ``quiet``).

    Returns:
        The `kadvisor.training.fit.Run` describing the run directory and its metrics.
    """
    from kadvisor.training.fit import fit as _fit

    return _fit(recipe, **kwargs)


def load_recipe(path, overrides=()):
    """Loads and validates a recipe file (see `kadvisor.recipe.load_recipe`)."""
    from kadvisor.recipe import load_recipe as _load

    return _load(path, overrides)
