"""kadvisor improve against KerasTuner's RandomSearch and Hyperband at the same epochs.  (slow)

    python benchmarks/improve_vs_tuner.py [--scenarios NAME,NAME] [--budget EPOCHS]
                                          [--work DIR] [--jobs 1] [--smoke]

On the mis-tuned runs of ``benchmarks/repair_scenarios.py`` (default: all 24; at least
10 make a comparison), each method gets ``--budget`` epochs (default 120) in all:

- *improve*: ``kadvisor.improve(recipe, budget=B)`` — round 0 is the mis-tuned
  recipe, each round one advisor action, kept only when validation improves beyond
  noise. Its result is the best round's run.
- *random* / *hyperband*: ``kadvisor tune`` (KerasTuner's RandomSearch / Hyperband
  through kadvisor.tuning) over the recipe paths the advisor patches (`SPACE`, the
  paths of ``advice_repairs.RANDOM_CHANGES``), seeded, then the best trial's recipe
  (best.toml) trained once with ``kadvisor fit`` (what ``tune --confirm 1`` does).
  The search gets the budget minus that one fit: random search ``(B - E) // E`` trials
  of the recipe's E epochs; Hyperband the largest ``max_epochs`` (at most 3 E) whose
  KerasTuner schedule (its oracle's own bracket sizes) fits in ``B - E``.

Reported per scenario and overall (mean):

- *test*: final test accuracy of the method's result (improve's best round; the
  tuner's confirmed best.toml run). The test split decided nothing in any method;
- *to 0.5*: epochs spent until the best-so-far *validation* accuracy first came
  within 0.5 points of the method's final best validation accuracy;
- *epochs*: epochs actually trained in all; *wall*: seconds, start-up included.

Every (scenario, method) runs in a fresh process and writes ``WORK/<scenario>/<method>.json``;
a second invocation reuses what finished. ``--smoke`` only imports and checks the
search recipes (used by the tests; trains nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from advice_repairs import RANDOM_CHANGES, slug  # noqa: E402
from repair_scenarios import SCENARIOS, Scenario, by_name  # noqa: E402

METHODS = ("improve", "random", "hyperband")
WITHIN = 0.005  # "within 0.5 points" of the final best validation accuracy
# The search space over the paths the advisor patches (RANDOM_CHANGES' keys), as absolute
# ranges: a tuner searches a standard range, not one centred on the broken value.
# train.epochs is the budget's own axis for a tuner (Hyperband allocates it), not searched.
SPACE = {
    "optimizer.learning_rate": {"log_uniform": [1e-5, 1e-1]},
    "optimizer.weight_decay": {"log_uniform": [1e-6, 1e-1]},
    "model.dropout": {"choice": [0.0, 0.1, 0.3, 0.5, 0.7]},
    "model.width": {"choice": [4, 8, 16, 32, 64]},
    "train.batch_size": {"choice": [8, 16, 32, 64, 128, 256]},
    "train.early_stopping": {"choice": [0, 3, 5, 10]},
    "loss.label_smoothing": {"choice": [0.0, 0.05, 0.1, 0.2]},
    "data.balance": {"choice": ["none", "class_weight", "oversample"]},
    "schedule.name": {"choice": ["constant", "cosine", "plateau"]},
}
assert set(SPACE) == set(RANDOM_CHANGES) - {"train.epochs"}, "SPACE must follow the advisor's paths"


def overrides_for(s: Scenario, epochs: int | None) -> list[str]:
    """The scenario's ``--set`` list; ``epochs`` (``--epochs``) goes first, so a scenario
    that sets train.epochs itself (too_few_epochs) keeps its own."""
    return ([f"train.epochs={epochs}"] if epochs else []) + list(s.overrides)


def scenario_text(s: Scenario, epochs: int | None = None) -> tuple[str, str]:
    """The scenario's recipe text (base file, comments kept, overrides written in)."""
    from kadvisor.tuning.search import search_text

    return search_text(os.path.join(ROOT, s.base), overrides_for(s, epochs))


def epochs_for(s: Scenario, budget: int, epochs: int | None) -> int | None:
    """``--epochs``, else None when the recipe's epochs leave room for a second fit in the
    budget, else ``budget // 2`` (a tiny --budget: two fits at least per method)."""
    if epochs:
        return epochs
    text, source = scenario_text(s)
    return None if planned_epochs(text, source) <= budget // 2 else max(1, budget // 2)


def planned_epochs(text: str, source: str) -> int:
    from kadvisor.recipe import recipe_from_text

    return recipe_from_text(text, source).train.epochs


def hyperband_epochs(max_epochs: int, factor: int = 3) -> int:
    """Epochs one Hyperband iteration trains, from KerasTuner's own bracket schedule.

    A trial that continues one of the previous round trains only the difference
    (kadvisor's hypermodel restores the saved weights).
    """
    import keras_tuner

    oracle = keras_tuner.oracles.HyperbandOracle(objective="val_accuracy", max_epochs=max_epochs, factor=factor)
    total = 0
    for bracket in range(oracle._get_num_brackets()):
        for rnd in range(oracle._get_num_rounds(bracket)):
            before = oracle._get_epochs(bracket, rnd - 1) if rnd else 0
            total += oracle._get_size(bracket, rnd) * (oracle._get_epochs(bracket, rnd) - before)
    return total


def search_settings(method: str, epochs: int, budget: int) -> dict:
    """The ``[search]`` table that spends at most ``budget - epochs`` epochs searching."""
    search_budget = budget - epochs  # one fit of best.toml comes after
    if method == "random":
        return {"algorithm": "random", "max_trials": max(1, search_budget // epochs)}
    best = 1
    for max_epochs in range(1, 3 * epochs + 1):
        if hyperband_epochs(max_epochs) <= search_budget:
            best = max_epochs
    return {"algorithm": "hyperband", "max_epochs": best, "factor": 3, "hyperband_iterations": 1}


def search_recipe_text(text: str, method: str, budget: int, source: str) -> str:
    """The scenario's recipe with a ``[search]`` table for ``method`` (tomlkit, comments kept)."""
    import tomlkit

    doc = tomlkit.parse(text)
    doc.pop("search", None)
    table = tomlkit.table()
    table.comment("benchmarks/improve_vs_tuner.py")
    for key, value in {**search_settings(method, planned_epochs(text, source), budget),
                       "objective": "val_accuracy", "seed": 1}.items():
        table.add(key, value)
    space = tomlkit.table()
    for path, dist in SPACE.items():
        inline = tomlkit.inline_table()
        inline.update(dist)
        space.add(path, inline)
    table.add("space", space)
    doc.add("search", table)
    return tomlkit.dumps(doc)


def reach(points: list[tuple[int, float]]) -> int | None:
    """Epochs spent until the best-so-far value came within `WITHIN` of the final best.

    Args:
        points: (epochs this step cost, validation accuracy) in the order they ran.
    """
    scores = [v for _, v in points if v is not None and math.isfinite(v)]
    if not scores:
        return None
    final, spent, best = max(scores), 0, -math.inf
    for cost, value in points:
        spent += cost
        if value is not None and math.isfinite(value):
            best = max(best, value)
        if best >= final - WITHIN:
            return spent
    return spent


def run_improve(s: Scenario, budget: int, work: str, epochs: int | None) -> dict:
    import kadvisor

    result = kadvisor.improve(os.path.join(ROOT, s.base), overrides=overrides_for(s, epochs), out=work,
                              rounds=1000, budget=budget)
    # A round counts at the incumbent's value it left (a reverted round adds cost only).
    return {"test": result.best.test, "epochs": result.epochs,
            "to_within": reach([(r.epochs, r.value if r.decision in ("baseline", "kept") else None)
                                for r in result.rows]),
            "rounds": len(result.rows), "kept": [r.change for r in result.kept], "stopped": result.stopped}


def run_tuner(s: Scenario, method: str, budget: int, work: str, epochs: int | None) -> dict:
    from kadvisor.tuning import confirm, tune

    text, source = scenario_text(s, epochs)
    os.makedirs(work, exist_ok=True)
    recipe_file = os.path.join(work, "search-recipe.toml")
    with open(recipe_file, "w", encoding="utf-8") as fh:
        fh.write(search_recipe_text(text, method, budget, source))
    result = tune(recipe_file, out=os.path.join(work, "tune"))
    # Trials in the order they ran (ids are given in that order in one process).
    rows = sorted(result.rows, key=lambda r: r.trial_id)
    confirmed = confirm(result.path, top=1)
    run = confirmed[0].run if confirmed else None
    test = ((run.metrics.get("test") or {}).get("accuracy") if run is not None else None)
    confirm_epochs = int(run.metrics.get("epochs", 0)) if run is not None else 0
    return {"test": test, "epochs": result.epochs_trained + confirm_epochs,
            "to_within": reach([(r.trained or 0, r.score if r.completed else None) for r in rows]),
            "trials": len(rows), "best": result.best.values if result.best else None}


def one(name: str, method: str, budget: int, work: str, epochs: int | None) -> int:
    """Runs one (scenario, method) in this process; writes WORK/<scenario>/<method>.json."""
    s = by_name(name)
    epochs = epochs_for(s, budget, epochs)
    base = os.path.join(work, slug(name))
    target = os.path.join(base, f"{method}-{budget}")
    if os.path.exists(target):
        shutil.rmtree(target)
    os.makedirs(base, exist_ok=True)
    start = time.perf_counter()
    out = (run_improve(s, budget, target, epochs) if method == "improve"
           else run_tuner(s, method, budget, target, epochs))
    out["recipe_epochs"] = epochs
    out["wall"] = round(time.perf_counter() - start, 1)
    with open(os.path.join(base, f"{method}-{budget}.json"), "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1, default=str)
    return 0


def launch(name: str, method: str, budget: int, work: str, epochs: int | None) -> dict | None:
    """Runs ``one`` in a fresh process (unless its JSON exists); returns its result."""
    path = os.path.join(work, slug(name), f"{method}-{budget}.json")
    if not os.path.exists(path):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name, method,
                               "--budget", str(budget), "--work", work,
                               *(["--epochs", str(epochs)] if epochs else [])], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:  # reported, not fatal: one failed method must not lose the others
            print(f"{name} {method} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return None
        wall = round(time.perf_counter() - start, 1)
        with open(path, encoding="utf-8") as fh:
            result = json.load(fh)
        result["wall"] = wall  # with the process start-up
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _cell(result: dict | None) -> str:
    if not result:
        return f"{'failed':>26s}"
    test = result.get("test")
    test = f"{test:.3f}" if isinstance(test, (int, float)) else "  n/a"
    within = result.get("to_within")
    return f"{test:>6s} {within if within is not None else '-':>5} {result['epochs']:>5} {result['wall']:>7.0f}"


def report(table: dict[str, dict[str, dict | None]], budget: int) -> None:
    """Prints one line per scenario (test, epochs to within 0.5 points, epochs, wall) and the means."""
    head = "".join(f" | {m:^26s}" for m in METHODS)
    sub = "".join(f" | {'test':>6s} {'to0.5':>5s} {'ep':>5s} {'wall s':>7s}" for _ in METHODS)
    print(f"budget {budget} epochs per method")
    print(f"{'scenario':32s}{head}\n{'':32s}{sub}")
    for name, results in table.items():
        print(f"{name:32s}" + "".join(f" | {_cell(results.get(m))}" for m in METHODS))
    summary = []
    for m in METHODS:
        done = [r[m] for r in table.values() if r.get(m)]
        tests = [d["test"] for d in done if isinstance(d.get("test"), (int, float))]
        within = [d["to_within"] for d in done if d.get("to_within") is not None]
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
        summary.append(f"{m}: mean test {mean(tests):.3f}, epochs to within 0.5 points {mean(within):.1f}, "
                       f"epochs {mean([d['epochs'] for d in done]):.1f}, wall {mean([d['wall'] for d in done]):.0f} s "
                       f"({len(done)} scenarios)")
    print("overall: " + "\n         ".join(summary))
    wins = sum(1 for r in table.values() if r.get("improve") and all(
        r.get(m) and (r["improve"].get("test") or 0) >= (r[m].get("test") or 0) for m in METHODS[1:]))
    print(f"improve's test accuracy at least both tuners': {wins} of {len(table)} scenarios")


def smoke(names: list[str], budget: int, epochs: int | None) -> int:
    """Builds and validates every search recipe; trains nothing."""
    from kadvisor.recipe import recipe_from_text

    for name in names:
        s = by_name(name)
        text, source = scenario_text(s, epochs_for(s, budget, epochs))
        for method in METHODS[1:]:
            recipe = recipe_from_text(search_recipe_text(text, method, budget, source), source)
            print(f"{name} {method}: {recipe.search.algorithm}, max_trials {recipe.search.max_trials}, "
                  f"max_epochs {recipe.search.max_epochs}, {len(recipe.search.space)} paths")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", help="comma-separated scenario names (default: every mis-tuned one)")
    parser.add_argument("--budget", type=int, default=120, help="epochs per method and scenario")
    parser.add_argument("--work", default=os.path.join(ROOT, "benchmarks", "out", "improve_vs_tuner"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--epochs", type=int, help="train.epochs of every scenario (default: the recipe's, "
                        "or budget // 2 when the recipe's leave no room for a second fit)")
    parser.add_argument("--smoke", action="store_true", help="build the search recipes only")
    parser.add_argument("--one", nargs=2, metavar=("SCENARIO", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.scenarios.split(",") if args.scenarios else [s.name for s in SCENARIOS if not s.healthy]
    for name in names:
        by_name(name)  # KeyError naming the choices
    if args.one:
        return one(args.one[0], args.one[1], args.budget, args.work, args.epochs)
    if args.smoke:
        return smoke(names, args.budget, args.epochs)
    start = time.perf_counter()
    jobs = [(n, m) for n in names for m in METHODS]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda job: launch(*job, args.budget, args.work, args.epochs), jobs))
    table: dict[str, dict] = {n: {} for n in names}
    for (n, m), r in zip(jobs, results):
        table[n][m] = r
    report(table, args.budget)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
