"""The `kadvisor` command line.

The only module that prints or exits. TensorFlow is imported inside command bodies, so
``kadvisor --help``, ``recipe`` and ``diagnose`` start in a fraction of a second.
Library errors (`KadvisorError`) become ``Error: ...`` and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from kadvisor import __version__
from kadvisor.errors import KadvisorError


class _Group(click.Group):
    """Turns library errors into one line and an exit code (tracebacks with --debug)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KadvisorError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {e}", err=True)
            ctx.exit(130 if type(e).__name__ == "Interrupted" else 1)
        except KeyboardInterrupt:
            click.echo("Error: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kadvisor")
@click.option("--debug", is_flag=True, help="Show tracebacks and TensorFlow logs.")
@click.pass_context
def main(ctx, debug):
    """Train Keras image classifiers from a recipe, then ask what to change next."""
    ctx.obj = {"debug": debug}
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        warnings.showwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    # "Warning: skipped 2 unreadable image files: ..." instead of a source excerpt.
    click.echo(f"Warning: {message}", err=True)


def _quiet_tensorflow() -> None:
    """Starts TensorFlow without its start-up chatter (kept with --debug)."""
    import logging

    from kadvisor.native_logs import start_tensorflow

    debug = bool(click.get_current_context().find_root().obj.get("debug"))
    start_tensorflow(quiet=not debug)
    if not debug:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)


@main.command()
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a recipe field (TOML value), e.g. optimizer.learning_rate=3e-4.")
@click.option("--out", "out_dir", default="runs", show_default=True, type=click.Path(file_okay=False), help="Parent folder of the run directory.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override train.epochs (of every stage).")
@click.option("--kfold", type=click.IntRange(min=2), help="Stratified K-fold cross-validation (same as validation.kfold).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="Continue the killed or interrupted run in this run directory (no RECIPE).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--worker-index", type=click.IntRange(min=0), help="This machine's index in distribute.workers (strategy 'multi_worker'; 0, the chief, writes the run directory).  [default: 0, or TF_CONFIG's]")
def fit(recipe, overrides, out_dir, epochs, kfold, resume_dir, quiet, worker_index):
    """Train the model RECIPE describes and write a run directory."""
    if resume_dir and (recipe or overrides or epochs or kfold):
        raise click.UsageError("--resume continues a run with its own recipe: give no RECIPE, --set, --epochs or --kfold")
    if not resume_dir and not recipe:
        raise click.UsageError("missing RECIPE (or --resume RUN_DIR)")
    echo = (lambda m: None) if quiet else click.echo
    if resume_dir:
        _join_cluster(os.path.join(resume_dir, "recipe.toml"), worker_index)
        _quiet_tensorflow()
        from kadvisor.training.fit import resume

        _report_run(resume(resume_dir, quiet=quiet, printer=echo, worker_index=worker_index), quiet)
        return
    from kadvisor.recipe import load_recipe

    loaded = load_recipe(recipe, overrides)
    if (kfold or loaded.validation.kfold) and loaded.distribute.strategy == "multi_worker":
        raise KadvisorError("validation.kfold: K-fold cannot run under distribute.strategy "
                            "'multi_worker'; expected kfold = 0, or another strategy")
    _join_cluster(loaded, worker_index)
    _quiet_tensorflow()
    if kfold or loaded.validation.kfold:
        from kadvisor.training.kfold import fit_kfold

        result = fit_kfold(loaded, out_dir, folds=kfold, epochs=epochs, quiet=quiet, printer=echo)
        click.echo(result.path)
        return
    from kadvisor.training.fit import fit as fit_recipe

    _report_run(fit_recipe(loaded, out_dir, epochs=epochs, quiet=quiet, printer=echo,
                           worker_index=worker_index), quiet)


def _join_cluster(recipe, worker_index) -> None:
    """Joins a 'multi_worker' cluster: TensorFlow allows it only before it starts."""
    from kadvisor.recipe import Recipe, load_recipe

    if not isinstance(recipe, Recipe):  # a run directory's recipe.toml (resume)
        if not os.path.isfile(recipe):
            return  # resume reports the directory
        recipe = load_recipe(recipe)
    if recipe.distribute.strategy != "multi_worker" and not worker_index:
        return
    from kadvisor.native_logs import filtered_native_stderr
    from kadvisor.training.cluster import join_cluster

    with filtered_native_stderr(not click.get_current_context().find_root().obj.get("debug")):
        join_cluster(recipe, worker_index)


def _report_run(run, quiet: bool) -> None:
    test = run.metrics.get("test") or {}
    if test and not quiet:
        click.echo("test: " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()))
    if run.path is not None:  # a non-chief worker of a cluster keeps no run directory
        click.echo(run.path)


@main.group()
def recipe():
    """Inspect and validate recipes."""


@recipe.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field before showing.")
def recipe_show(file, overrides):
    """Print the resolved recipe with every default and its help."""
    from kadvisor.recipe import load_recipe, to_toml

    click.echo(to_toml(load_recipe(file, overrides)), nl=False)


@recipe.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def recipe_check(file):
    """Validate a recipe; exit 1 with the first problem."""
    from kadvisor.recipe import load_recipe

    load_recipe(file)
    click.echo(f"{file}: ok")


@main.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("-o", "--output", default="recipe.toml", show_default=True, type=click.Path(dir_okay=False), help="Recipe file to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing file (never a run directory's own files).")
def init(folder, output, force):
    """Write a commented starter recipe for FOLDER (one sub-folder of images per class)."""
    from kadvisor.outputs import check_output, write_text
    from kadvisor.starter import starter_recipe

    check_output(output, option="-o", force=force)
    text, summary = starter_recipe(folder)
    write_text(output, text)
    click.echo(f"{summary}\nwrote {output}; next: kadvisor fit {output}")


@main.command()
@click.argument("target", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the curves with the findings marked to this image (.png, .pdf, .svg, ...).")
@click.option("--apply", "apply_to", type=click.Path(dir_okay=False), help="Write the recipe with the top action applied to this TOML file.")
@click.option("--action", type=click.IntRange(min=1), default=1, show_default=True, help="Which ranked action --apply uses.")
@click.option("--recipe", "recipe_file", type=click.Path(dir_okay=False), help="Patch this recipe file (keeps its comments) instead of the run's recipe.toml.")
@click.option("--force", is_flag=True, help="Let --apply and --plot replace existing files (never the input, the recipe patched, or a run directory's own files).")
@click.option("--format-in", "format_in", type=click.Choice(["rundir", "csv", "json", "tensorboard", "lightning", "huggingface", "mlflow"]), help="Read TARGET as this log format instead of detecting it.")
@click.option("--columns", metavar="ROLE=NAME,...", help="Which logged names are which curves, e.g. loss=train/loss,val_loss=valid/loss.")
def diagnose(target, fmt, plot, apply_to, action, recipe_file, force, format_in, columns):
    """Read the learning curves in TARGET and recommend the next step.

    TARGET: a run directory, K-fold parent, Keras CSVLogger file or History JSON,
    TensorBoard event files, Lightning metrics.csv, Hugging Face trainer_state.json
    or an MLflow mlruns directory.
    """
    from kadvisor.advisor.command import diagnose_command

    code = diagnose_command(target, fmt=fmt, plot=plot, apply=apply_to, action=action, recipe=recipe_file,
                            echo=click.echo, colour=sys.stdout.isatty(), force=force,
                            format_in=format_in, columns=columns)
    sys.exit(code or 0)


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--split", type=click.Choice(["test", "validation", "train"]), default="test", show_default=True, help="Split to evaluate on (rebuilt from the run's recipe.toml).")
def evaluate(run_dir, split):
    """Per-class report, top-k accuracy, confusion matrix and most confident mistakes of RUN_DIR's model, saved in RUN_DIR."""
    _quiet_tensorflow()
    from kadvisor.evaluation.evaluate import evaluate_run

    for line in evaluate_run(run_dir, split).summary_lines():
        click.echo(line)


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--method", type=click.Choice(["mean", "vote"]), default="mean", show_default=True, help="Average the probabilities, or take the majority vote.")
def ensemble(run_dirs, method):
    """Score the ensemble of RUN_DIRS (a K-fold parent counts as its folds) beside each member on their common test split."""
    _quiet_tensorflow()
    from kadvisor.evaluation.ensemble import ensemble_runs

    for line in ensemble_runs(run_dirs, method).summary_lines():
        click.echo(line)


@main.command()
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Tuning directory (default tuning/<name>; running again continues the search there).")
@click.option("--refine", type=click.Path(file_okay=False), metavar="TUNE_DIR", help="Narrow each numeric range around the top trials of TUNE_DIR and search again (RECIPE defaults to its search.toml).")
@click.option("--chief", is_flag=True, help="Serve the search to workers (KerasTuner's chief) and write the results.")
@click.option("--worker", metavar="ID", help="Run trials for the chief at --host/--port, as worker ID.")
@click.option("--host", help="Address the chief listens on / workers connect to.  [default: 127.0.0.1]")
@click.option("--port", type=int, help="The chief's port.  [default: 8000]")
@click.option("--wait", type=click.FloatRange(min=0), metavar="SECONDS", help="How long a --worker waits for the chief to answer before giving up.  [default: 120]")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a recipe field (TOML value), e.g. search.max_epochs=9.")
@click.option("--confirm", "confirm_top", type=click.IntRange(min=1), metavar="N", help="After the search, train the N best distinct trials on all the data (run directories under TUNE_DIR/confirm).")
def tune(recipe, out, refine, chief, worker, host, port, wait, overrides, confirm_top):
    """Search RECIPE's [search.space] with KerasTuner (Hyperband by default); write leaderboard.csv, best.toml and search.png."""
    _quiet_tensorflow()
    from kadvisor.tuning.command import tune_command

    if confirm_top and worker is not None:
        raise click.UsageError("--confirm runs where the results are written: on the chief, not on a --worker")
    tune_command(recipe, out=out, refine=refine, chief=chief, worker=worker, host=host, port=port,
                 overrides=overrides, confirm_top=confirm_top or 0, echo=click.echo, wait=wait)


@main.command()
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
@click.option("--rounds", type=click.IntRange(min=0), help="Most rounds after round 0 (each tries one advisor action).  [default: 5]")
@click.option("--budget", type=click.IntRange(min=1), metavar="EPOCHS", help="Most epochs of all rounds together, round 0 included.  [default: no limit]")
@click.option("--out", type=click.Path(file_okay=False), help="Improve directory, new or empty (default improve/<name>-<timestamp>).")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a recipe field (TOML value), e.g. optimizer.learning_rate=5.0.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="Continue the killed or interrupted improve in this directory (no RECIPE).")
def improve(recipe, rounds, budget, out, overrides, resume_dir):
    """Fit RECIPE, then round by round apply the advisor's first action and keep it only if validation improves beyond noise; write rounds.csv, best.toml and improve.png."""
    if resume_dir and (recipe or overrides or out):
        raise click.UsageError("--resume continues with the directory's own recipe: give no RECIPE, --set or --out")
    if not resume_dir and not recipe:
        raise click.UsageError("missing RECIPE (or --resume DIR)")
    from kadvisor.improving.command import improve_command

    improve_command(recipe, rounds=rounds, budget=budget, out=out, overrides=overrides, resume_dir=resume_dir,
                    echo=click.echo, before_training=_quiet_tensorflow)


if __name__ == "__main__":  # pragma: no cover
    main()
