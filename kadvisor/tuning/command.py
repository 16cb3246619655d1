"""``kadvisor tune``: the command's body (cli.py only parses the options)."""

from __future__ import annotations

from typing import Callable

from kadvisor.tuning.distributed import choose_role


def tune_command(recipe: str | None, *, out: str | None, refine: str | None, chief: bool,
                 worker: str | None, host: str | None, port: int | None, overrides=(),
                 confirm_top: int = 0, echo: Callable[[str], None] = print, wait: float | None = None) -> None:
    """Runs ``kadvisor tune`` and prints its summary.

    With ``confirm_top`` > 0 the best distinct trials are then trained on all the data
    (the last step of coarse-to-fine), each in its own run directory.

    Raises:
        KadvisorError: for bad input, a changed saved search or a failing search.
    """
    from kadvisor.tuning.search import tune

    role = choose_role(chief, worker, host, port, wait)
    result = tune(recipe, out=out, overrides=overrides, refine=refine, role=role, say=echo)
    done = sum(r.completed for r in result.rows)
    if role.kind == "worker":
        echo(f"worker {role.tuner_id}: {len(result.rows)} trials, {result.epochs_trained} epochs, "
             f"{result.seconds:.0f} s; the chief writes the results in {result.path}")
        return
    best = result.best
    echo(f"{done} of {len(result.rows)} trials completed, {result.epochs_trained} epochs, {result.seconds:.0f} s")
    if best is None:
        echo(f"no trial completed; see {result.path / 'leaderboard.csv'}")
        return
    echo(f"best: trial {best.trial_id}, {result.objective} {best.score:.4f}")
    for path in result.outputs.files:
        echo(f"wrote {path}")
    if confirm_top:
        _confirm(result, confirm_top, echo)
        return
    echo(f"next: kadvisor fit {result.path / 'best.toml'}   "
         f"(or narrow the ranges: kadvisor tune --refine {result.path})")


def _confirm(result, top: int, echo: Callable[[str], None]) -> None:
    """Trains the ``top`` best trials on all the data and names the winner."""
    from kadvisor.tuning.confirm import confirm

    echo(f"confirming the top {top} on all the data:")
    confirmed = confirm(result.path, top=top, say=echo)
    scored = [c for c in confirmed if c.score is not None]
    if not scored:
        echo(f"no confirmed run logged {result.objective}")
        return
    best = scored[0]
    echo(f"best on all the data: trial {best.trial.trial_id}, {result.objective} {best.score:.4f}, "
         f"{best.run.path}")
    echo(f"next: kadvisor diagnose {best.run.path}")
