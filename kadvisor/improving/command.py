"""``kadvisor improve``: the command's body (cli.py only parses the options)."""

from __future__ import annotations

from typing import Callable

from kadvisor.improving import state as st


def improve_command(recipe: str | None, *, rounds: int | None, budget: int | None, out: str | None,
                    overrides=(), resume_dir: str | None = None, echo: Callable[[str], None] = print,
                    before_training: Callable[[], None] | None = None) -> None:
    """Runs (or with ``resume_dir`` continues) ``kadvisor improve`` and prints its summary.

    Raises:
        KadvisorError: for bad input; `Interrupted` on Ctrl-C (resumable).
    """
    from kadvisor.improving.loop import improve, resume

    if resume_dir is not None:
        result = resume(resume_dir, rounds=rounds, budget=budget, say=echo, before_training=before_training)
    else:
        result = improve(recipe, out=out, overrides=overrides, rounds=5 if rounds is None else rounds,
                         budget=budget, say=echo, before_training=before_training)
    best = result.best
    kept = ", ".join(f"{r.change} (round {r.round})" for r in result.kept) or "none"
    echo(f"best: round {best.round}, {result.objective} {best.value:.4f}; kept changes: {kept}; "
         f"{result.epochs} epochs in {len(result.rows)} rounds")
    for name in (st.ROUNDS, st.BEST, st.PLOT):
        if (result.path / name).exists():
            echo(f"wrote {result.path / name}")
    echo(f"next: kadvisor fit {result.path / st.BEST}")
