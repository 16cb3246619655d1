"""`RecipeHyperModel`: a KerasTuner ``HyperModel`` that trains what a recipe describes.

Each trial applies its values to the recipe as dotted-path patches, so the model is
built by the same `kadvisor.models.build_model` and trained by the same stage loop
(`kadvisor.training.loop.train_stages`) as ``kadvisor fit``:

- ``build(hp)`` builds the model of the patched recipe (``model.*`` fields);
- ``fit(hp, model, ...)`` batches the data with the trial's ``train.batch_size``
  (a ``tf.data`` dataset ignores ``model.fit(batch_size=...)``, so the data arrive
  unbatched) and trains epochs ``[initial_epoch, epochs)`` of the recipe's stage axis:
  Hyperband's budget lands in the right stage, with that stage's frozen parts,
  optimizer and learning rate.
"""

from __future__ import annotations

import contextlib
import math
import time

import keras
import keras_tuner

from kadvisor.errors import KadvisorError
from kadvisor.recipe import apply_overrides
from kadvisor.recipe.schema import Recipe
from kadvisor.training.callbacks import higher_is_better, training_callbacks
from kadvisor.training.loop import train_stages
from kadvisor.tuning.hyperparameters import trial_patch


class RecipeHyperModel(keras_tuner.HyperModel):
    """Builds and trains the model of a recipe patched with a trial's values.

    Args:
        recipe: The recipe as searched (search subsample/classes already applied).
        space: The parsed ``[search.space]`` (`Distribution` list).
        data: An unbatched `kadvisor.data.DataBundle` of ``recipe``.
        objective: The metric reported to the oracle (``search.objective``).
        strategy: The ``tf.distribute`` strategy the model trains under.
    """

    def __init__(self, recipe: Recipe, space, data, objective: str, strategy=None):
        super().__init__(name=recipe.name)
        self.recipe, self.space, self.data = recipe, space, data
        self.objective, self.strategy = objective, strategy
        # Searching data.* fields (augmentation, image size) changes the pipeline itself.
        self._prepares_data = any(d.path.startswith("data.") for d in space)
        # KerasTuner builds a model while constructing a tuner only to collect the
        # hyperparameters; `build_tuner` sets this so they are declared, nothing built.
        self.declaring = False

    def trial_recipe(self, hp) -> Recipe:
        """The recipe with the trial's values applied (declares them on ``hp``)."""
        return apply_overrides(self.recipe, trial_patch(self.space, hp).items(), label="search.space")

    def build(self, hp):
        """Builds the (uncompiled) model; each stage compiles it in `fit`."""
        from kadvisor.models import build_model

        if self.declaring:
            trial_patch(self.space, hp)
            return None
        try:
            recipe = self.trial_recipe(hp)
            shape = (*recipe.data.image_size, recipe.data.channels)
            return build_model(recipe, self.data.info.num_classes, shape)
        except KadvisorError as e:  # these values cannot work: fail the trial, not the search
            raise keras_tuner.errors.FailedTrialError(str(e)) from None

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        """Trains epochs ``[initial_epoch, epochs)`` and returns the trial's metrics.

        Args:
            hp: The trial's hyperparameters.
            model: The model from `build` (weights restored by Hyperband when the
                trial continues an earlier one).
            callbacks: KerasTuner's callbacks (its best-epoch checkpoint among them).
            epochs: Epoch to stop before (Hyperband's ``tuner/epochs``); default:
                every epoch of every stage.
            initial_epoch: First epoch (Hyperband's ``tuner/initial_epoch``).

        Returns:
            The logs of the best epoch by the objective, plus ``epochs`` (epochs the
            model has trained in all), ``trained`` (epochs run in this trial) and
            ``seconds``.
        """
        from kadvisor.data import prepare_data

        from kadvisor.training.devices import scale_for_replicas

        try:
            recipe = self.trial_recipe(hp)
            data = prepare_data(recipe, batched=False) if self._prepares_data else self.data
            if self.strategy is not None:  # the searched batch size is per replica, as in fit
                recipe = scale_for_replicas(recipe, self.strategy.num_replicas_in_sync)
            data = data.batch(recipe.train.batch_size)
        except KadvisorError as e:
            raise keras_tuner.errors.FailedTrialError(str(e)) from None
        for callback in callbacks:
            # KerasTuner's per-trial hook forwards batch events to its no-op tuner
            # methods; left as is, Keras would wait for every step before the next.
            if type(callback).__name__ == "TunerCallback":
                callback.async_safe = True
        record = EpochRecord(self.objective)
        monitor = recipe.train.monitor if data.validation is not None else recipe.train.monitor.removeprefix("val_")
        start = time.perf_counter()
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            train_stages(
                model, recipe, data, start=initial_epoch, stop=epochs,
                callbacks=lambda span: [*callbacks, *training_callbacks(span.recipe, monitor), record],
                prepare=lambda stage_recipe: prepare_data(stage_recipe),
            )
        return record.result(time.perf_counter() - start)


class EpochRecord(keras.callbacks.Callback):
    """Keeps every epoch's logs of a trial (its stages train in separate ``fit`` calls)."""

    def __init__(self, objective: str):
        super().__init__()
        self.objective = objective
        self.epochs: list[tuple[int, dict]] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, {k: float(v) for k, v in (logs or {}).items()}))

    def result(self, seconds: float) -> dict:
        """The best epoch's logs plus ``epochs``, ``trained`` and ``seconds``.

        Raises:
            keras_tuner.errors.FatalValueError: when the objective was never logged
                (a misspelt ``search.objective`` would fail every trial alike).
        """
        if not self.epochs:
            raise keras_tuner.errors.FailedTrialError("the trial's epoch window held no epochs to train")
        logged = self.epochs[-1][1]
        if self.objective not in logged:
            raise keras_tuner.errors.FatalValueError(
                f"search.objective: got {self.objective!r}, which training does not log; "
                f"expected one of {', '.join(sorted(logged))}"
            )
        sign = 1 if higher_is_better(self.objective) else -1
        finite = [(e, logs) for e, logs in self.epochs if math.isfinite(logs[self.objective])]
        _, best = max(finite, key=lambda item: sign * item[1][self.objective]) if finite else self.epochs[-1]
        return {**best, "epochs": self.epochs[-1][0] + 1, "trained": len(self.epochs), "seconds": round(seconds, 2)}

