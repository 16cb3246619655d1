"""``kadvisor improve``: close the loop — fit, diagnose, apply the first action, keep what helps.

    from kadvisor.improving import improve, resume
    result = improve("recipes/digits.toml", rounds=3, budget=120, say=print)
    result.best.round, result.best_recipe, result.rows

`loop` runs the rounds, `decision` says what counts as an improvement (more than the
incumbent's noise on the validation objective), `rounds` writes rounds.csv,
`best_recipe` best.toml, `plot` improve.png and `state` keeps improve.json, so a
killed loop resumes. Importing this package does not import TensorFlow.
"""


def improve(*args, **kwargs):
    """See `kadvisor.improving.loop.improve`."""
    from kadvisor.improving.loop import improve as run

    return run(*args, **kwargs)


def resume(*args, **kwargs):
    """See `kadvisor.improving.loop.resume`."""
    from kadvisor.improving.loop import resume as run

    return run(*args, **kwargs)


__all__ = ["improve", "resume"]
