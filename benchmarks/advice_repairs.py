"""Does the advisor's first action repair a mis-tuned run?  (slow: ~30 min on 2 CPU cores)

    python benchmarks/advice_repairs.py [--work DIR] [--jobs 2] [--only NAME ...]
                                        [--phase before|random|advised|report] [--save-curves]
                                        [--scenarios shipped|held-out]

For every scenario of ``benchmarks/repair_scenarios.py`` (30 runs with one known cause,
3 healthy controls; ``--scenarios held-out``: 27 + 3 never used to refine them):

1. *before*: fit the mis-tuned recipe;
2. *advised*: ``kadvisor diagnose RUN --apply next.toml`` (the first action), fit next.toml;
3. *random*: the same run with one random change instead — a random path among those
   the advisor patches, a random direction and size (seeded by the scenario name).

Scored on the fixed test split: *repaired* = test error down by at least
max(1 point, 20 % of the error), *harmed* = up by at least 1 point. A healthy control the
advisor leaves alone (no finding) keeps its error. Prints the table (scenario, cause,
findings, applied action, test accuracy before / advised / random) and the rates, and the
rate among the runs the mis-tuning really hurt (at least a point below the healthy
controls of their base recipe in the same run: refits vary, and some mis-tunings leave a
saturated recipe at 0.99, where nothing can be repaired).

Runs are kept in ``--work`` (default ``benchmarks/out/repairs``) and reused: a second
invocation fits only what is missing, so ``--phase advised`` after changing the rules
re-fits only the advised runs (delete ``WORK/*/advised*`` first). ``--save-curves``
copies each mis-tuned run's history, recipe and data facts (no model) into
``tests/data/repair_runs/`` (``repair_runs_held_out/`` with ``--scenarios held-out``) —
the real curves of known cause the rule tests read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from repair_scenarios import HELD_OUT, SCENARIOS, Scenario, by_name  # noqa: E402

# Paths the advisor's actions patch, with how a random change moves each.
RANDOM_CHANGES = {
    "optimizer.learning_rate": ("scale", 0.01, 100.0),
    "optimizer.weight_decay": ("scale", 0.01, 100.0),
    "model.dropout": ("choice", [0.0, 0.1, 0.3, 0.5, 0.7]),
    "model.width": ("choice", [4, 8, 32, 64]),
    "train.epochs": ("scale", 0.25, 4.0),
    "train.batch_size": ("choice", [8, 16, 64, 128, 256]),
    "train.early_stopping": ("choice", [0, 3, 5, 10]),
    "loss.label_smoothing": ("choice", [0.0, 0.05, 0.2, 0.3]),
    "data.balance": ("choice", ["none", "class_weight", "oversample"]),
    "schedule.name": ("choice", ["constant", "cosine", "plateau"]),
}
CONTRACT = ("recipe.toml", "data.json", "metrics.json", "history.csv")


def slug(name: str) -> str:
    return name.replace("/", "__")


def finished(run_dir: str) -> dict | None:
    """metrics.json of a finished run, else None."""
    try:
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as fh:
            metrics = json.load(fh)
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("status") == "finished" else None


def test_accuracy(metrics: dict | None) -> float:
    test = (metrics or {}).get("test") or {}
    value = test.get("accuracy")
    return float(value) if isinstance(value, (int, float)) else float("nan")


def random_change(scenario: Scenario, recipe: dict) -> tuple[str, object]:
    """One random (path, value), seeded by the scenario name, that changes the recipe."""
    from kadvisor.advisor.readers.run import get_path

    rng = random.Random(int(hashlib.sha256(scenario.name.encode()).hexdigest(), 16) % 2**32)
    while True:
        path = rng.choice(sorted(RANDOM_CHANGES))
        kind, *args = RANDOM_CHANGES[path]
        old = get_path(recipe, path)
        if kind == "scale":
            factor = math.exp(rng.uniform(math.log(args[0]), math.log(args[1])))
            if not isinstance(old, (int, float)) or old == 0:
                continue
            new = max(1, round(old * factor)) if isinstance(old, int) else float(f"{old * factor:.3g}")
        else:
            new = rng.choice(args[0])
        if new != old:
            return path, new


def _toml_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value).lower() if isinstance(value, bool) else repr(value)


def fit_one(recipe: str, overrides: list[str], run_dir: str) -> dict:
    """Fits ``recipe`` with ``overrides`` into ``run_dir`` in a fresh process."""
    if finished(run_dir):
        return finished(run_dir)
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    code = ("import sys, kadvisor; kadvisor.fit(sys.argv[1], overrides=sys.argv[3:], quiet=True, "
            "run_dir=sys.argv[2])")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_NUM_INTRAOP_THREADS": "1",
           "TF_NUM_INTEROP_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code, recipe, run_dir, *overrides], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:  # reported, not fatal: one failed fit must not lose the others
        print(f"fit failed ({run_dir}): {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
    return finished(run_dir) or {}


def advise(run_dir: str, next_recipe: str) -> dict:
    """Diagnoses ``run_dir``; writes the first action into ``next_recipe``.

    Returns the findings and the applied change (None when the run looks healthy).
    """
    from kadvisor.advisor.command import apply_action
    from kadvisor.advisor.engine import diagnose
    from kadvisor.advisor.report import describe_action, numbered_actions

    d = diagnose(run_dir)
    out = {"findings": [f.rule for f in d.findings], "action": None}
    if numbered_actions(d):
        if os.path.exists(next_recipe):
            os.remove(next_recipe)
        what, _ = apply_action(d, os.path.join(run_dir, "recipe.toml"), next_recipe, 1)
        out["action"] = what
        out["paths"] = sorted(numbered_actions(d)[0][1].patch)
    return out


def run_scenario(s: Scenario, work: str, phases: set[str]) -> dict:
    """Runs the asked phases of one scenario; returns its row of the table."""
    from kadvisor.advisor.inputs import read_recipe_dict

    base = os.path.join(work, slug(s.name))
    os.makedirs(base, exist_ok=True)
    row: dict = {"name": s.name, "cause": s.cause, "healthy": s.healthy}
    before_dir = os.path.join(base, "before")
    if "before" in phases or finished(before_dir):
        row["before"] = test_accuracy(fit_one(os.path.join(ROOT, s.base), list(s.overrides), before_dir))
    if not finished(before_dir):
        return row
    recipe_file = os.path.join(before_dir, "recipe.toml")
    if "random" in phases or finished(os.path.join(base, "random")):
        path, value = random_change(s, read_recipe_dict(recipe_file))
        row["random_change"] = f"{path}={_toml_value(value)}"
        row["random"] = test_accuracy(fit_one(recipe_file, [row["random_change"]], os.path.join(base, "random")))
    advice = advise(before_dir, os.path.join(base, "next.toml"))  # cheap: always, so a report has every row
    row.update(advice)
    if advice["action"] is None:
        row["advised"] = row["before"]
    elif "advised" in phases or finished(os.path.join(base, "advised")):
        row["advised"] = test_accuracy(fit_one(os.path.join(base, "next.toml"), [], os.path.join(base, "advised")))
    return row


def verdict(before: float, after: float) -> str:
    """"repaired", "harmed" or "same" from test accuracies (see the module docstring)."""
    if not (math.isfinite(before) and math.isfinite(after)):
        return "?"
    err0, err1 = 1 - before, 1 - after
    if err1 <= err0 - max(0.01, 0.2 * err0):
        return "repaired"
    if err1 >= err0 + 0.01:
        return "harmed"
    return "same"


def report(rows: list[dict]) -> None:
    """Prints the table and the rates."""
    print(f"{'scenario':34s} {'findings':38s} {'first action':58s} {'before':>6s} {'advised':>7s} {'random':>6s}")
    counts = {"mis": 0, "repaired": 0, "harmed": 0, "random_repaired": 0, "random_harmed": 0,
              "controls": 0, "controls_harmed": 0, "named": 0}
    for r in rows:
        if "advised" not in r:
            continue
        adv = verdict(r["before"], r["advised"])
        rnd = verdict(r["before"], r.get("random", float("nan")))
        action = r.get("action") or "(none: healthy)"
        print(f"{r['name']:34s} {','.join(r.get('findings', [])) or 'healthy':38.38s} {action:58.58s} "
              f"{r['before']:6.3f} {r['advised']:7.3f} {r.get('random', float('nan')):6.3f}  {adv}/{rnd}")
        if r["healthy"]:
            counts["controls"] += 1
            counts["controls_harmed"] += adv == "harmed"
        else:
            counts["mis"] += 1
            counts["repaired"] += adv == "repaired"
            counts["harmed"] += adv == "harmed"
            counts["random_repaired"] += rnd == "repaired"
            counts["random_harmed"] += rnd == "harmed"
            expect = by_name(r["name"]).expect
            counts["named"] += bool(set(r.get("paths", [])) & set(expect))
    n = max(counts["mis"], 1)
    print(f"mis-tuned runs: {counts['mis']}; first action repaired {counts['repaired']} "
          f"({100 * counts['repaired'] / n:.0f}%), harmed {counts['harmed']}, named the known cause "
          f"{counts['named']}; random change repaired {counts['random_repaired']} "
          f"({100 * counts['random_repaired'] / n:.0f}%), harmed {counts['random_harmed']}")
    print(f"healthy controls: {counts['controls']}, harmed by the advice: {counts['controls_harmed']}")
    hurt = really_hurt(rows)
    if hurt is not None:
        fixed = sum(verdict(r["before"], r["advised"]) == "repaired" for r in hurt)
        print(f"of the {len(hurt)} mis-tuned runs at least 1 point below their base's healthy controls "
              f"(something to repair): first action repaired {fixed} ({100 * fixed / max(len(hurt), 1):.0f}%)")


def really_hurt(rows: list[dict]) -> list[dict] | None:
    """The mis-tuned rows whose test accuracy is at least a point below the mean of the
    healthy controls on the same base recipe in this run; None without such controls.

    A mis-tuning that did not hurt (AdamW at 0.5 still reaching 0.99) leaves nothing to
    repair, so "repaired" cannot happen there whatever the advice.
    """
    done = [r for r in rows if "advised" in r and math.isfinite(r["before"])]
    control = {}
    for r in done:
        if r["healthy"]:
            control.setdefault(by_name(r["name"]).base, []).append(r["before"])
    if not control:
        return None
    level = {base: sum(v) / len(v) for base, v in control.items()}
    return [r for r in done if not r["healthy"] and by_name(r["name"]).base in level
            and r["before"] <= level[by_name(r["name"]).base] - 0.01]


def save_curves(work: str, scenarios: list[Scenario], folder: str, known: list[Scenario]) -> None:
    """Copies each run's contract files (no model) into ``tests/data/FOLDER/``.

    ``causes.json`` keeps the entries of the other scenarios of ``known`` (the set the
    folder holds), so ``--only`` adds runs instead of dropping the others; entries of
    scenarios no longer in the set are dropped.
    """
    target = os.path.join(ROOT, "tests", "data", folder)
    index = os.path.join(target, "causes.json")
    causes = {}
    if os.path.exists(index):
        with open(index, encoding="utf-8") as fh:
            causes = json.load(fh)
    names = {slug(s.name) for s in known}
    causes = {name: entry for name, entry in causes.items() if name in names}
    for s in scenarios:
        src = os.path.join(work, slug(s.name), "before")
        if not finished(src):
            continue
        dst = os.path.join(target, slug(s.name))
        os.makedirs(dst, exist_ok=True)
        for name in CONTRACT:
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    causes.update({slug(s.name): {"cause": s.cause, "expect": list(s.expect), "healthy": s.healthy,
                                  "base": s.base, "overrides": list(s.overrides)}
                   for s in scenarios if finished(os.path.join(work, slug(s.name), "before"))})
    with open(index, "w", encoding="utf-8") as fh:
        json.dump(causes, fh, indent=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=os.path.join(ROOT, "benchmarks", "out", "repairs"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--phase", choices=["before", "random", "advised", "report"], action="append")
    parser.add_argument("--save-curves", action="store_true")
    parser.add_argument("--scenarios", choices=["shipped", "held-out"], default="shipped",
                        help="held-out: the scenarios the rules were never refined on")
    args = parser.parse_args(argv)
    scenarios = [by_name(n) for n in args.only] if args.only else (
        HELD_OUT if args.scenarios == "held-out" else SCENARIOS)
    phases = set(args.phase or ["before", "random", "advised"]) - {"report"}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda s: run_scenario(s, args.work, phases), scenarios))
    report(rows)
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.save_curves:  # each scenario into its own set's folder, whatever --scenarios said
        for folder, known in (("repair_runs", SCENARIOS), ("repair_runs_held_out", HELD_OUT)):
            chosen = [s for s in scenarios if s in known]
            if chosen:
                save_curves(args.work, chosen, folder, known)
    return 0


if __name__ == "__main__":
    sys.exit(main())
