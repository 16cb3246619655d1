"""Deliberately mis-tuned runs with one known cause each, plus healthy controls.

Shared by ``benchmarks/advice_repairs.py`` (does the advisor's first action repair the
run?) and ``benchmarks/improve_vs_tuner.py``. Each scenario is a base recipe and the
``--set`` overrides that break it; ``expect`` lists the recipe paths whose change
addresses the cause (the first action "names the cause" when it changes one of them).

Two base recipes: ``recipes/digits.toml`` (saturated: 0.997-1.000 test accuracy when
healthy) and ``recipes/digits_few.toml`` (20 training images per class, ~0.97), where a
repair shows in the test error.
"""

from __future__ import annotations

from dataclasses import dataclass

DIGITS = "recipes/digits.toml"
FEW = "recipes/digits_few.toml"
LR = ("optimizer.learning_rate",)
SGD = 'optimizer.name="sgd"'
REGULARISERS = ("optimizer.weight_decay", "model.dropout", "data.augment.flip",
                "data.augment.translate", "data.augment.rotation", "data.augment.zoom",
                "train.early_stopping", "loss.label_smoothing")
NO_REGULARISATION = ("optimizer.weight_decay=0.0", "model.dropout=0.0", "loss.label_smoothing=0.0",
                     "data.augment.translate=0.0", "data.augment.rotation=0.0", "data.augment.zoom=0.0",
                     'schedule.name="constant"', "optimizer.learning_rate=1e-3")


@dataclass(frozen=True)
class Scenario:
    """One mis-tuned (or healthy) run.

    Attributes:
        name: Short id, unique.
        base: The base recipe, relative to the repository root.
        overrides: ``--set PATH=VALUE`` strings applied to the base.
        cause: The known cause, in words.
        expect: Recipe paths whose change addresses the cause (empty for controls).
        healthy: A control: the advice must not make it worse.
    """

    name: str
    base: str
    overrides: tuple[str, ...]
    cause: str
    expect: tuple[str, ...] = ()
    healthy: bool = False


def _both(name: str, overrides: tuple[str, ...], cause: str, expect: tuple[str, ...]) -> list[Scenario]:
    return [Scenario(f"digits/{name}", DIGITS, overrides, cause, expect),
            Scenario(f"few/{name}", FEW, overrides, cause, expect)]


SCENARIOS: list[Scenario] = [
    *_both("adamw_lr_high", ("optimizer.learning_rate=5.0",), "AdamW learning rate 1,000x too high", LR),
    *_both("adamw_lr_low", ("optimizer.learning_rate=1e-5",), "AdamW learning rate 300x too low", LR),
    *_both("sgd_lr_high", (SGD, "optimizer.learning_rate=50.0"), "SGD learning rate far too high", LR),
    *_both("sgd_lr_low", (SGD, "optimizer.learning_rate=1e-4"), "SGD learning rate far too low", LR),
    *_both("too_few_epochs", ("train.epochs=3",), "three epochs: stopped long before convergence",
           ("train.epochs",)),
    *_both("model_too_small", ("model.width=1",), "a CNN one filter wide", ("model.width",)),
    *_both("crushing_weight_decay", ("optimizer.weight_decay=30.0",), "weight decay so strong that "
           "it erases what each step learns", ("optimizer.weight_decay",)),
    *_both("heavy_dropout", ("model.dropout=0.95",), "dropout 0.95 before the classifier",
           ("model.dropout",)),
    Scenario("digits/batch_too_large", DIGITS, ("train.batch_size=1024",),
             "a batch of 1,024: two updates per epoch for the whole budget",
             ("train.batch_size", "train.epochs", "optimizer.learning_rate")),
    Scenario("few/tiny_data_no_regularisation", FEW,
             ("data.max_per_class=10", *NO_REGULARISATION, "train.epochs=60"),
             "10 images per class, every regulariser off, constant rate", REGULARISERS),
    Scenario("digits/constant_high_lr", DIGITS, ('schedule.name="constant"', "optimizer.learning_rate=0.05"),
             "a constant learning rate 15x the base with no decay", LR + ("schedule.name",)),
    *_both("imbalance", ("data.imbalance=0.05",), "long-tailed classes (1:20) without weighting",
           ("data.balance", "loss.name")),
    Scenario("digits/adam_low_lr_short", DIGITS, ('optimizer.name="adam"', "optimizer.learning_rate=1e-4",
                                                  "train.epochs=10"),
             "Adam at the bottom of its range (1e-4) for only 10 epochs", ("train.epochs",) + LR),
    *_both("eager_early_stopping", ("train.early_stopping=1",), "early stopping after one epoch "
           "without improvement", ("train.early_stopping",)),
    *_both("heavy_augmentation", ("data.augment.rotation=0.5", "data.augment.translate=0.4",
                                  "data.augment.zoom=0.6"),
           "augmentation far beyond the usual: half-turn rotations, 40 % shifts, 60 % zoom",
           ("data.augment.rotation", "data.augment.translate", "data.augment.zoom")),
    *_both("lr_decays_too_fast", ('schedule.name="exponential"', "schedule.gamma=0.3"),
           "an exponential schedule cutting the rate 0.3x per epoch: below 1e-5 by epoch 5",
           ("schedule.name", "schedule.gamma", "optimizer.learning_rate")),
    *_both("sgd_clipnorm_tiny", (SGD, "optimizer.learning_rate=0.05", "optimizer.clipnorm=1e-4"),
           "SGD with every gradient clipped to a norm of 1e-4", ("optimizer.clipnorm",)),
    Scenario("digits/healthy", DIGITS, (), "none: the shipped recipe", healthy=True),
    Scenario("few/healthy", FEW, (), "none: the shipped recipe", healthy=True),
    Scenario("few/healthy_seed7", FEW, ("seed=7",), "none: the shipped recipe, another seed", healthy=True),
]


# Scenarios the rules were never refined on: other magnitudes of the same kinds of
# mistake, on another seed (other splits, initial weights and shuffling), written after
# the rules were last changed. `advice_repairs.py --scenarios held-out` scores them.
SEED = "seed=11"


def _held_out(name: str, overrides: tuple[str, ...], cause: str, expect: tuple[str, ...]) -> list[Scenario]:
    return [Scenario(f"held-out/digits/{name}", DIGITS, (SEED, *overrides), cause, expect),
            Scenario(f"held-out/few/{name}", FEW, (SEED, *overrides), cause, expect)]


HELD_OUT: list[Scenario] = [
    *_held_out("adamw_lr_high", ("optimizer.learning_rate=0.5",), "AdamW learning rate 0.5 (~150x the base)", LR),
    *_held_out("adamw_lr_low", ("optimizer.learning_rate=3e-6",), "AdamW learning rate 3e-6", LR),
    *_held_out("sgd_lr_high", (SGD, "optimizer.learning_rate=10.0"), "SGD learning rate 10", LR),
    *_held_out("sgd_lr_low", (SGD, "optimizer.learning_rate=3e-5"), "SGD learning rate 3e-5", LR),
    *_held_out("too_few_epochs", ("train.epochs=2",), "two epochs", ("train.epochs",)),
    *_held_out("model_too_small", ("model.width=2",), "a CNN two filters wide", ("model.width",)),
    *_held_out("crushing_weight_decay", ("optimizer.weight_decay=10.0",), "weight decay 10",
               ("optimizer.weight_decay",)),
    *_held_out("heavy_dropout", ("model.dropout=0.9",), "dropout 0.9 before the classifier", ("model.dropout",)),
    Scenario("held-out/digits/batch_too_large", DIGITS, (SEED, "train.batch_size=512"),
             "a batch of 512: three updates per epoch", ("train.batch_size", "train.epochs", "optimizer.learning_rate")),
    Scenario("held-out/few/tiny_data_no_regularisation", FEW,
             (SEED, "data.max_per_class=8", *NO_REGULARISATION, "train.epochs=80"),
             "8 images per class, every regulariser off, constant rate", REGULARISERS),
    *_held_out("imbalance", ("data.imbalance=0.1",), "long-tailed classes (1:10) without weighting",
               ("data.balance", "loss.name")),
    Scenario("held-out/few/eager_early_stopping", FEW, (SEED, "train.early_stopping=2"),
             "early stopping after two epochs without improvement", ("train.early_stopping",)),
    # Written with the augmentation, schedule and clipping causes, before any was run.
    *_held_out("heavy_augmentation", ("data.augment.rotation=0.3", "data.augment.zoom=0.7"),
               "rotations up to 0.3 of a turn and 70 % zoom", ("data.augment.rotation", "data.augment.zoom")),
    *_held_out("lr_decays_too_fast", ('schedule.name="multistep"', "schedule.steps=[2, 4, 6]"),
               "a multistep schedule dividing the rate by 10 at epochs 2, 4 and 6",
               ("schedule.name", "schedule.steps", "schedule.gamma", "optimizer.learning_rate")),
    *_held_out("sgd_clipnorm_tiny", (SGD, "optimizer.learning_rate=0.1", "optimizer.clipnorm=1e-3"),
               "SGD with every gradient clipped to a norm of 1e-3", ("optimizer.clipnorm",)),
    Scenario("held-out/digits/healthy", DIGITS, (SEED,), "none: the shipped recipe, seed 11", healthy=True),
    Scenario("held-out/few/healthy", FEW, (SEED,), "none: the shipped recipe, seed 11", healthy=True),
    Scenario("held-out/few/healthy_seed3", FEW, ("seed=3",), "none: the shipped recipe, seed 3", healthy=True),
]


def by_name(name: str) -> Scenario:
    """The scenario called ``name`` (KeyError naming the choices otherwise)."""
    for s in SCENARIOS + HELD_OUT:
        if s.name == name:
            return s
    raise KeyError(f"no scenario {name!r}; choose from {', '.join(s.name for s in SCENARIOS)}")
