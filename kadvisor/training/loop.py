"""The stage loop shared by `kadvisor fit`, its resume, and the tuner.

A recipe's stages lie end to end on one epoch axis: stage ``i`` covers epochs
``[begin, end)``. `train_stages` trains any window ``[start, stop)`` of that axis, so
the same code runs a whole recipe (``fit``), continues a killed run from its last
finished epoch (``fit --resume``), and trains a Hyperband trial from its
``initial_epoch`` to its budget (``tune``), always in the right stage.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable

from kadvisor.recipe.schema import Recipe, Stage
from kadvisor.training.cluster import is_multi_worker
from kadvisor.training.devices import jit_compile_of
from kadvisor.training.optimizers import build_loss, build_optimizer
from kadvisor.training.stages import set_trainable, stages_of


@dataclass
class StageSpan:
    """One stage placed on the run's epoch axis.

    Attributes:
        index: Position of the stage (0-based).
        count: Number of stages in the recipe.
        stage: The `Stage` (name, trainable, overrides).
        recipe: The recipe with the stage's overrides applied.
        begin: First epoch of the stage (0-based, inclusive).
        end: Epoch after its last (exclusive).
    """

    index: int
    count: int
    stage: Stage
    recipe: Recipe
    begin: int
    end: int


def stage_spans(recipe: Recipe) -> list[StageSpan]:
    """Returns the recipe's stages laid end to end (one implicit stage without any)."""
    stages = stages_of(recipe)
    spans, begin = [], 0
    for index, stage in enumerate(stages):
        stage_recipe = recipe.for_stage(index) if recipe.stages else recipe
        end = begin + stage_recipe.train.epochs
        spans.append(StageSpan(index, len(stages), stage, stage_recipe, begin, end))
        begin = end
    return spans


def total_epochs(recipe: Recipe) -> int:
    """Epochs of all stages together."""
    return stage_spans(recipe)[-1].end


def stage_data(span: StageSpan, data, prepare: Callable | None):
    """The data bundle for a stage: re-prepared when the stage changes data fields."""
    changes_data = any(p.startswith(("data.", "train.batch_size")) for p in span.stage.overrides)
    return prepare(span.recipe) if changes_data and prepare is not None else data


def compile_for_stage(model, span: StageSpan, num_classes: int, steps_per_epoch: int) -> None:
    """Freezes the stage's frozen parts and compiles with its optimizer and loss.

    Recompiling is what makes a change of ``trainable`` take effect in Keras.
    """
    set_trainable(model, span.stage.trainable)
    loss, _ = build_loss(span.recipe, num_classes)
    model.compile(
        optimizer=build_optimizer(span.recipe, steps_per_epoch), loss=loss, metrics=["accuracy"],
        jit_compile=jit_compile_of(span.recipe),
    )


def labels_for_loss(dataset, recipe: Recipe, num_classes: int):
    """The dataset with one-hot labels when the recipe's loss needs them (else as is).

    Label smoothing and focal loss are categorical losses; the pipeline yields class ids.
    """
    import tensorflow as tf

    _, one_hot = build_loss(recipe, num_classes)
    if dataset is None or not one_hot:
        return dataset
    return dataset.map(lambda x, y: (x, tf.one_hot(y, num_classes)))


def with_labels(data, recipe: Recipe):
    """``(train, validation)`` of a bundle with the labels the recipe's loss needs."""
    n = data.info.num_classes
    return labels_for_loss(data.train, recipe, n), labels_for_loss(data.validation, recipe, n)


def steps_per_epoch(dataset) -> int:
    """Batches per epoch of a batched dataset (1 when unknown)."""
    n = int(dataset.cardinality())
    return n if n > 0 else 1


def train_stages(
    model,
    recipe: Recipe,
    data,
    *,
    start: int = 0,
    stop: int | None = None,
    callbacks: Callable[[StageSpan], list] = lambda span: [],
    prepare: Callable | None = None,
    on_compiled: Callable[[object, StageSpan], None] | None = None,
    verbose: int = 0,
    say: Callable[[str], None] = lambda message: None,
) -> int:
    """Trains epochs ``[start, stop)`` of the recipe, stage by stage.

    Args:
        model: A built model (from `kadvisor.models.build_model`), inside the strategy
            scope of the caller.
        recipe: The recipe (its stages decide trainable parts, optimizer and epochs).
        data: A batched `kadvisor.data.DataBundle`.
        start: First epoch to train (0-based); a stage that began earlier continues.
        stop: Epoch to stop before (default: the end of the last stage).
        callbacks: Returns the Keras callbacks for one stage.
        prepare: Re-prepares data for a stage that overrides ``data.*`` fields.
        on_compiled: Called after each compile (e.g. to restore optimizer state).
        verbose: Keras ``fit`` verbosity.
        say: Receives one-line progress messages.

    Returns:
        The epoch after the last one trained.
    """
    import tensorflow as tf

    from kadvisor.training import custom_step

    strategy = tf.distribute.get_strategy()
    custom = custom_step.needs_custom_step(strategy, recipe.train.accumulate)
    multi_worker = custom and is_multi_worker(strategy)
    if multi_worker:  # the chief decides (a resumed chief starts later than a fresh worker)
        with custom_step.watching_peers(strategy):
            start, = (int(v) for v in custom_step.broadcast(strategy, [start]))
    spans = stage_spans(recipe)
    stop = spans[-1].end if stop is None else stop
    epoch = start
    for span in spans:
        if span.end <= epoch or epoch >= stop:
            continue
        stage_bundle = stage_data(span, data, prepare)
        train, validation = with_labels(stage_bundle, span.recipe)
        if custom:  # it accumulates itself: the optimizer counts updates
            compile_for_stage(model, _updates_only(span), stage_bundle.info.num_classes,
                              -(-steps_per_epoch(train) // span.recipe.train.accumulate))
        else:
            compile_for_stage(model, span, stage_bundle.info.num_classes, steps_per_epoch(train))
        if custom:  # every worker builds the same optimizer variables before any restore
            custom_step.build_state(model, train.element_spec)
        if on_compiled is not None:
            on_compiled(model, span)
        if span.count > 1:
            say(f"stage {span.index + 1}/{span.count} '{span.stage.name}': "
                f"trainable={span.stage.trainable}, epochs {span.begin + 1}-{span.end}, "
                f"lr {span.recipe.optimizer.learning_rate:g}")
        end = min(span.end, stop)
        if custom:
            custom_step.fit_custom(
                model, train, validation=validation, initial_epoch=epoch, epochs=end,
                class_weight=stage_bundle.class_weight, callbacks=callbacks(span),
                accumulate=span.recipe.train.accumulate, verbose=verbose,
            )
        else:
            model.fit(
                train,
                validation_data=validation,
                initial_epoch=epoch,
                epochs=end,
                class_weight=stage_bundle.class_weight,
                shuffle=False,  # the tf.data pipeline shuffles (reshuffled every epoch)
                callbacks=callbacks(span),
                verbose=verbose,
            )
        epoch = end
        if model.stop_training:
            if span.index == span.count - 1 or end >= stop or _diverged(model):
                break
            say(f"stage '{span.stage.name}' stopped early; continuing with the next stage")
            model.stop_training = False
            epoch = max(epoch, span.end)
    if multi_worker:
        say(f"final weights {custom_step.weights_digest(model)} (the same on every worker)")
    return epoch


def _updates_only(span: StageSpan) -> StageSpan:
    """The span with ``train.accumulate = 1``: for an optimizer stepped once per update."""
    recipe = copy.deepcopy(span.recipe)
    recipe.train.accumulate = 1
    return dataclasses.replace(span, recipe=recipe)


def _diverged(model) -> bool:
    # TerminateOnNaN stopped the stage: later stages would start from NaN weights.
    import math

    losses = getattr(model.history, "history", {}).get("loss") or [0.0]
    return not math.isfinite(float(losses[-1]))
