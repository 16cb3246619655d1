"""Transfer learning on a small data set: scratch vs head-only vs fine-tuned.

    python examples/transfer_digits.py [--epochs N] [--out runs/transfer_digits]

1. Pretrains a small CNN on the digits 0-4 (recipes/digits_pretrain.toml); the run
   directory keeps its backbone as ``backbone.weights.h5``.
2. Trains on the digits 5-9 with only 20 images per class (recipes/digits_transfer.toml)
   three ways, with the same data, head and number of epochs:
   - scratch: a randomly initialised backbone, every layer trained;
   - head only: the pretrained backbone frozen, only the new head trained (stage 1);
   - fine-tuned: stage 1, then every layer at a 10x lower rate (stage 2).
3. Prints the three test accuracies (the same ~180 test images for all three).

Everything goes through the library API, ``kadvisor.fit(recipe, ...)``, with the
recipes' own fields changed the way ``--set`` would change them. Takes a few minutes
on 2 CPU cores; ``--epochs`` shortens every stage for a quick look.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import kadvisor

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def transfer_variants(transfer, backbone_weights: str) -> dict:
    """The three ways of training the target task, as recipes.

    Args:
        transfer: The loaded digits_transfer recipe (two stages: head, finetune).
        backbone_weights: Path of the pretrained ``backbone.weights.h5``.

    Returns:
        ``{"scratch": Recipe, "head only": Recipe, "fine-tuned": Recipe}``.
    """
    total = sum(stage.overrides.get("train.epochs", transfer.train.epochs) for stage in transfer.stages)
    scratch = copy.deepcopy(transfer)
    scratch.set("model.weights", "none")
    scratch.set("train.epochs", total)  # the same number of epochs as both stages together
    scratch.stages = []
    head_only = copy.deepcopy(transfer)
    head_only.set("model.weights", backbone_weights)
    head_only.stages = head_only.stages[:1]
    fine_tuned = copy.deepcopy(transfer)
    fine_tuned.set("model.weights", backbone_weights)
    return {"scratch": scratch, "head only": head_only, "fine-tuned": fine_tuned}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="epochs of every run and stage (default: the recipes')")
    parser.add_argument("--out", default="runs/transfer_digits", help="parent of the run directories")
    args = parser.parse_args(argv)

    pretrain = kadvisor.fit(RECIPES / "digits_pretrain.toml", out_dir=args.out, epochs=args.epochs, quiet=True)
    weights = str(pretrain.path / "backbone.weights.h5")
    print(f"pretrained on 0-4: test accuracy {pretrain.metrics['test']['accuracy']:.3f} ({pretrain.path})")

    transfer = kadvisor.load_recipe(RECIPES / "digits_transfer.toml")
    results = {}
    for label, recipe in transfer_variants(transfer, weights).items():
        run = kadvisor.fit(recipe, out_dir=args.out, epochs=args.epochs, quiet=True)
        results[label] = run.metrics["test"]["accuracy"]
        print(f"5-9 from 20 images per class, {label:10s}: test accuracy {results[label]:.3f} ({run.path})")
    verdict = "beats" if results["fine-tuned"] > results["scratch"] else "does NOT beat"
    print(f"fine-tuned {verdict} scratch: {results['fine-tuned']:.3f} vs {results['scratch']:.3f}")
    return results


if __name__ == "__main__":
    main()
