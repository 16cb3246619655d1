"""Optimizers and learning-rate schedules from the recipe (Keras's own classes).

Keras evaluates a schedule at the optimizer's micro-batch counter (``_iterations``,
0-based, read before it is incremented), not at its update count: with gradient
accumulation (``train.accumulate = N``) the k-th update (1-based) happens at micro-batch
``N*k - 1``. A boundary given in updates ("step" unit) is therefore multiplied by N,
and epoch-unit boundaries are converted with the micro-batches per epoch.

Multistep boundaries follow Caffe: with ``steps = [b]`` the first b updates (or b
epochs) use the base rate and update b + 1 the decayed one. `PiecewiseConstantDecay`
keeps the old value while ``counter <= boundary``, so the boundary is the counter of
the last old-rate update, ``N*b - 1`` -- the same rule with and without accumulation.
"""

from __future__ import annotations

import keras


def micro_batches(recipe, amount: int, steps_per_epoch: int) -> int:
    """Converts an amount in ``schedule.unit`` into the schedule's micro-batch count.

    Args:
        recipe: The (stage) recipe.
        amount: Epochs or optimizer steps, per ``schedule.unit``.
        steps_per_epoch: Batches (micro-batches) per epoch of the training dataset.
    """
    if recipe.schedule.unit == "epoch":
        return int(amount * steps_per_epoch)
    return int(amount * recipe.train.accumulate)


def build_schedule(recipe, steps_per_epoch: int):
    """Returns a float or a `keras.optimizers.schedules.LearningRateSchedule`.

    Args:
        recipe: The (stage) recipe; the base rate is ``optimizer.learning_rate``.
        steps_per_epoch: Batches per epoch, to convert epoch units.
    """
    s, lr = recipe.schedule, recipe.optimizer.learning_rate
    S = keras.optimizers.schedules
    if s.name in ("constant", "plateau"):  # plateau decays through a callback
        return lr
    if s.name == "multistep":
        if not s.steps:
            return lr
        boundaries = [micro_batches(recipe, b, steps_per_epoch) - 1 for b in s.steps]
        values = [lr * s.gamma**i for i in range(len(boundaries) + 1)]
        return S.PiecewiseConstantDecay(boundaries, values)
    if s.name == "exponential":
        return S.ExponentialDecay(lr, decay_steps=max(1, micro_batches(recipe, 1, steps_per_epoch)), decay_rate=s.gamma)
    if s.name == "cosine":
        total = max(1, recipe.train.epochs * steps_per_epoch)
        warmup = micro_batches(recipe, s.warmup, steps_per_epoch)
        return S.CosineDecay(
            initial_learning_rate=lr if warmup == 0 else lr * 1e-3,
            decay_steps=max(1, total - warmup),
            alpha=min(1.0, s.min_lr / lr),
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    raise ValueError(f"unknown schedule {s.name!r}")  # the schema prevents this


def build_optimizer(recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Builds the optimizer with its schedule, weight decay, clipping and accumulation."""
    o = recipe.optimizer
    common = {
        "learning_rate": build_schedule(recipe, steps_per_epoch),
        "weight_decay": o.weight_decay or None,
        "clipnorm": o.clipnorm or None,
        "gradient_accumulation_steps": recipe.train.accumulate if recipe.train.accumulate > 1 else None,
    }
    if o.name == "sgd":
        return keras.optimizers.SGD(momentum=o.momentum, nesterov=o.nesterov, **common)
    if o.name == "adam":
        return keras.optimizers.Adam(**common)
    if o.name == "adamw":
        # AdamW's own default decay (0.004) would hide a recipe's explicit 0.
        common["weight_decay"] = o.weight_decay
        return keras.optimizers.AdamW(**common)
    if o.name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=o.momentum, **common)
    raise ValueError(f"unknown optimizer {o.name!r}")  # the schema prevents this


def build_loss(recipe, num_classes: int):
    """Returns (loss, needs_one_hot): Keras's cross-entropy or focal loss."""
    l = recipe.loss
    if l.name == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            alpha=l.alpha, gamma=l.gamma, label_smoothing=l.label_smoothing
        ), True
    if l.label_smoothing > 0:
        return keras.losses.CategoricalCrossentropy(label_smoothing=l.label_smoothing), True
    return keras.losses.SparseCategoricalCrossentropy(), False
