"""Train on the embedded digits with the library API, then ask the advisor.

    python examples/fit_digits.py

The same as `kadvisor fit recipes/digits.toml` followed by `kadvisor diagnose RUN_DIR`,
from Python: `kadvisor.fit` accepts a recipe file, a `Recipe`, or a dict of tables, and
returns the finished `Run` (its directory, resolved recipe, metrics and best model).
"""

from pathlib import Path

import kadvisor
from kadvisor.advisor import diagnose

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def main() -> None:
    recipe = kadvisor.load_recipe(RECIPES / "digits.toml", overrides=["train.epochs=10"])
    run = kadvisor.fit(recipe, out_dir="runs", quiet=True)
    print(f"run directory: {run.path}")
    print(f"best epoch {run.metrics['best_epoch']}, test accuracy {run.metrics['test']['accuracy']:.4f}")
    diagnosis = diagnose(str(run.path))
    for finding in diagnosis.findings:
        print(f"{finding.rule}: {finding.summary}")
    if not diagnosis.findings:
        print("advisor: nothing urgent")


if __name__ == "__main__":
    main()
