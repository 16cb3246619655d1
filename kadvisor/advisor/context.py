"""What a run knows besides its curves, read the way a practitioner reads it.

A run directory carries its recipe (optimizer, learning rate, batch, epochs,
regularisers) and ``data.json`` (classes, split sizes); a bare log carries neither, but
its numbers can still make some facts evident (a loss sitting at ln 10 with accuracy
0.10 is a 10-class model guessing). `RunContext` gathers these facts once, so the cause
analysis (`kadvisor.advisor.causes`) can say *why* a curve looks the way it does — a
learning rate 500× above its optimizer's usual range, a model at chance, two optimizer
updates per epoch — instead of describing the shape alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.readers.run import get_path

# Base learning rates practitioners use: (low, high, a good first choice). Adam-family
# rates are scale-free (the step is normalised), SGD's scale with the gradient.
USUAL_LEARNING_RATE = {
    "adam": (1e-4, 1e-2, 1e-3),
    "adamw": (1e-4, 1e-2, 1e-3),
    "rmsprop": (1e-4, 1e-2, 1e-3),
    "sgd": (1e-3, 1.0, 0.05),
}
# A bare log names no optimizer: only a rate above every range above is evident (a low
# one may be fine-tuning a pretrained backbone), and the first choice is one every
# optimizer above tolerates.
ANY_OPTIMIZER = (1e-4, 1.0, 1e-2)
# A logged rate this low is a tenth of the low end of every range above: small steps for
# any optimizer, even a fine-tuning one.
LOW_LOGGED_LEARNING_RATE = 1e-5
# Regularisers beyond these are no longer "some regularisation" but the cause of a fit
# that fails: dropout that drops most features, decoupled weight decay that shrinks the
# weights by a large part of themselves every epoch (lr × decay × updates per epoch).
HEAVY_DROPOUT = 0.5
# Far beyond the usual 0.1-0.5: the handicap is the cause even when validation error
# is already small (training accuracy far below validation says the model is starved).
EXTREME_DROPOUT = 0.7
CRUSHING_DECAY = 0.5
SMALL_WIDTH = 4
FEW_UPDATES = 4
# Augmentation (Keras preprocessing-layer factors, `data.augment.*`) far beyond what
# practitioners use, and the usual value to bring it back to. Past these a digit or a
# letter stops being itself: rotated by up to half a turn (factor 0.25 is ±90°) a 6
# becomes a 9, shifted by 30 % of the image a third of it is gone. Usual values are
# Keras tutorials' ranges.
EXTREME_AUGMENTATION = {  # path: (far beyond above this, usual value)
    "data.augment.rotation": (0.25, 0.05), "data.augment.translate": (0.3, 0.1),
    "data.augment.zoom": (0.5, 0.1), "data.augment.noise": (0.3, 0.05),
    "data.augment.brightness": (0.5, 0.2), "data.augment.contrast": (0.5, 0.2),
    "data.augment.saturation": (0.5, 0.2), "data.augment.hue": (0.25, 0.05),
}
# Clipping every gradient to a norm this small caps SGD's step at lr × clipnorm, far
# below any useful size (practitioners clip at 0.1-10, usually 1). Adam-family updates
# are normalised by the gradient's own scale, so clipping hardly shortens their steps.
TINY_CLIPNORM = 0.01
USUAL_CLIPNORM = 1.0
_RGB_ONLY = ("data.augment.saturation", "data.augment.hue")
# Label smoothing four times the usual 0.1: the targets flatten towards uniform, and
# the training loss's floor (the entropy of the smoothed targets) climbs towards chance.
HEAVY_LABEL_SMOOTHING = 0.4
USUAL_LABEL_SMOOTHING = 0.1


@dataclass
class RunContext:
    """Facts of one run; None where the run does not say.

    Attributes:
        classes: Number of classes (``data.json``), or inferred when evident.
        chance_loss: Cross-entropy of guessing the class prior (ln K, or the entropy of
            the training class counts).
        chance_accuracy: Accuracy of always answering the majority class.
        optimizer: Optimizer name from the recipe.
        learning_rate: Base learning rate from the recipe.
        batch_size: Batch size from the recipe.
        train_size: Training images (``data.json``).
        val_size: Validation images (``data.json``).
        epochs_planned: ``train.epochs`` of the recipe.
        epochs_run: Epochs logged.
        early_stopping: Patience of early stopping (0 = off).
        weight_decay, dropout, width: Regularisation and capacity settings.
        label_smoothing, loss_name: ``loss.label_smoothing`` and ``loss.name``.
        clipnorm: ``optimizer.clipnorm`` (0 = off).
        augment: ``data.augment.*`` factors, dotted path → value (numbers only).
        lr_from_log: The learning rate was read from the log's learning-rate column
            (its peak, so a warm-up does not hide it), not from a recipe.
    """

    classes: int | None = None
    chance_loss: float | None = None
    chance_accuracy: float | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    train_size: int | None = None
    val_size: int | None = None
    epochs_planned: int | None = None
    epochs_run: int = 0
    early_stopping: int = 0
    weight_decay: float = 0.0
    dropout: float = 0.0
    width: int | None = None
    backbone: str | None = None
    lr_from_log: bool = False
    label_smoothing: float = 0.0
    loss_name: str | None = None
    clipnorm: float = 0.0
    augment: dict = field(default_factory=dict)

    @classmethod
    def from_features(cls, f: RunFeatures) -> "RunContext":
        """Reads the recipe and data facts of ``f.run`` (the curves, for a bare log)."""
        recipe, data = f.run.recipe, f.run.data
        ctx = cls(epochs_run=f.n)
        counts = {k: v for k, v in (get_path(data, "splits.train.counts") or {}).items()
                  if isinstance(v, (int, float)) and v > 0}
        classes = get_path(data, "num_classes")
        ctx.classes = classes if isinstance(classes, int) and classes >= 2 else (len(counts) or None)
        if counts:
            p = np.asarray(list(counts.values()), dtype=float)
            p /= p.sum()
            ctx.chance_loss = float(-(p * np.log(p)).sum())
            ctx.chance_accuracy = float(p.max())
        elif ctx.classes:
            ctx.chance_loss, ctx.chance_accuracy = math.log(ctx.classes), 1.0 / ctx.classes
        else:
            ctx._infer_chance(f)
        ctx.train_size = _size(get_path(data, "splits.train.size"))
        ctx.val_size = _size(get_path(data, "splits.validation.size"))
        if recipe is not None:
            ctx.optimizer = get_path(recipe, "optimizer.name")
            ctx.learning_rate = _number(get_path(recipe, "optimizer.learning_rate"))
            ctx.batch_size = _int(get_path(recipe, "train.batch_size"))
            ctx.epochs_planned = _int(get_path(recipe, "train.epochs"))
            ctx.early_stopping = _int(get_path(recipe, "train.early_stopping")) or 0
            ctx.weight_decay = _number(get_path(recipe, "optimizer.weight_decay")) or 0.0
            ctx.dropout = _number(get_path(recipe, "model.dropout")) or 0.0
            ctx.width = _int(get_path(recipe, "model.width"))
            ctx.backbone = get_path(recipe, "model.backbone")
            ctx.label_smoothing = _number(get_path(recipe, "loss.label_smoothing")) or 0.0
            ctx.loss_name = get_path(recipe, "loss.name")
            ctx.clipnorm = _number(get_path(recipe, "optimizer.clipnorm")) or 0.0
            # Keras's saturation and hue layers act on RGB only: kadvisor skips them otherwise.
            rgb = get_path(recipe, "data.channels", 3) == 3
            ctx.augment = {path: value for path in EXTREME_AUGMENTATION
                           if (value := _number(get_path(recipe, path))) is not None
                           and (rgb or path not in _RGB_ONLY)}
        if ctx.learning_rate is None and f.lr is not None and C.finite(f.lr).size:
            ctx.learning_rate, ctx.lr_from_log = float(np.max(C.finite(f.lr))), True
        return ctx

    def _infer_chance(self, f: RunFeatures) -> None:
        """Chance level of a bare log, only when its numbers make it evident: a [0, 1]
        accuracy that ends within 0.01 of 1/K *and* a loss within 3 % of ln K."""
        if not (f.bounded and f.metric and "acc" in f.metric and f.train_err is not None and f.loss is not None):
            return
        errors, losses = C.finite(f.train_err), C.finite(f.loss)
        if not (errors.size and losses.size):
            return  # an all-NaN curve says nothing about chance
        acc = 1.0 - float(np.median(errors[-3:]))
        loss = float(np.median(losses[-3:]))
        if not (0.0 < acc < 0.55 and loss > 0):
            return
        k = int(round(1.0 / acc))
        if k >= 2 and abs(acc - 1.0 / k) <= 0.01 and abs(loss - math.log(k)) <= 0.03 * math.log(k):
            self.classes, self.chance_loss, self.chance_accuracy = k, math.log(k), 1.0 / k

    @property
    def steps_per_epoch(self) -> int | None:
        """Optimizer updates per epoch (training images / batch size)."""
        if self.train_size and self.batch_size:
            return max(1, math.ceil(self.train_size / self.batch_size))
        return None

    def learning_rate_verdict(self) -> tuple[str, float] | None:
        """("high" or "low", how many times beyond the edge of the optimizer's usual
        range), or None when the rate is inside it or unknown."""
        usual = self._usual()
        lr = self.learning_rate
        if usual is None or lr is None or lr <= 0:
            return None
        low, high, _ = usual
        if lr > high:
            return "high", lr / high
        # A bare log may be fine-tuning, where 1e-5 is usual: it gets no verdict here, and
        # only a loss crawling at <= LOW_LOGGED_LEARNING_RATE counts (slow_convergence).
        if lr < low and not self.lr_from_log:
            return "low", low / lr
        return None

    def learning_rate_in_range(self) -> bool:
        """Whether the recipe's rate is known and inside its optimizer's usual range."""
        return (not self.lr_from_log and self.learning_rate is not None and self.learning_rate > 0
                and self._usual() is not None and self.learning_rate_verdict() is None)

    def learning_rate_is_low(self) -> bool:
        """Whether the run's steps are known to be small: a recipe rate below its
        optimizer's usual range, or a logged rate that never exceeded
        `LOW_LOGGED_LEARNING_RATE`."""
        if self.lr_from_log:
            return self.learning_rate is not None and 0 < self.learning_rate <= LOW_LOGGED_LEARNING_RATE
        verdict = self.learning_rate_verdict()
        return verdict is not None and verdict[0] == "low"

    def usual_learning_rate(self) -> float | None:
        """A good first learning rate for the run's optimizer."""
        usual = self._usual()
        return usual[2] if usual else None

    def optimizer_words(self) -> str:
        """The optimizer whose range the rate is judged against, in words."""
        if self.optimizer in USUAL_LEARNING_RATE:
            return str(self.optimizer)
        return "any common optimizer (Adam family 1e-4–1e-2, SGD 1e-3–1)"

    def _usual(self) -> tuple[float, float, float] | None:
        usual = USUAL_LEARNING_RATE.get(str(self.optimizer))
        if usual is None and self.optimizer is None and self.lr_from_log:
            return ANY_OPTIMIZER
        return usual

    def rate_cut_early(self, f: RunFeatures) -> tuple[int, float] | None:
        """(Epoch index, rate) where a schedule first cut the logged learning rate below a
        tenth of its optimizer's usual low end, when that happened in the first half of
        the run after starting inside the range; None otherwise (or without an lr log).

        A cosine schedule decays over the whole run and cannot cut early; an exponential
        or multistep one, blind to validation, can, and then the remaining epochs move the
        weights by almost nothing. (A plateau schedule cuts only after validation stopped
        improving: its low rate answers a plateau rather than causing one.) Read only where
        the recipe names such a schedule and has no stages: a bare log's or a later
        stage's low rate may be fine-tuning, where 1e-5 is usual.
        """
        recipe = f.run.recipe
        if (f.lr is None or get_path(recipe, "schedule.name") not in ("exponential", "multistep")
                or get_path(recipe, "stages")):
            return None
        usual = USUAL_LEARNING_RATE.get(str(self.optimizer))
        if usual is None:
            return None
        lr = C.fill_gaps(f.lr)
        below = np.flatnonzero(np.isfinite(lr) & (lr < usual[0] / 10))
        if not below.size or below[0] == 0 or below[0] >= f.n / 2:
            return None
        i = int(below[0])
        before = C.finite(lr[:i])
        return (i, float(lr[i])) if before.size and float(before.max()) >= usual[0] else None

    def extreme_augmentation(self) -> dict[str, tuple[float, float]]:
        """Augmentation factors far beyond the usual: path → (value, usual value)."""
        return {path: (value, EXTREME_AUGMENTATION[path][1]) for path, value in self.augment.items()
                if value > EXTREME_AUGMENTATION[path][0]}

    def label_smoothing_floor(self) -> float | None:
        """The lowest training cross-entropy label smoothing allows: the entropy of the
        smoothed targets (true class 1 - s + s/K, every other s/K), given K classes.
        None for focal loss, whose value is not a cross-entropy."""
        k, s = self.classes, self.label_smoothing
        if self.loss_name == "focal" or not k or not 0 < s < 1:
            return None
        true, other = 1 - s + s / k, s / k
        return float(-(true * math.log(true) + (k - 1) * other * math.log(other)))

    def decay_per_epoch(self) -> float | None:
        """How much decoupled weight decay alone shrinks the weights per epoch
        (lr × weight decay × updates per epoch; Keras applies ``w -= lr·wd·w`` each
        step for every optimizer)."""
        steps = self.steps_per_epoch
        if not (steps and self.learning_rate and self.weight_decay):
            return None
        return self.learning_rate * self.weight_decay * steps

    def at_chance(self, f: RunFeatures) -> bool:
        """Whether the run ended no better than guessing the class prior, on training
        and (when logged) on validation: the loss over the last epochs within 5 % of the
        chance loss, or the accuracy within 2 points of the majority share."""
        k = max(2, min(5, f.n // 3))

        def guessing(loss: np.ndarray | None, err: np.ndarray | None) -> bool | None:
            if self.chance_accuracy and f.bounded and f.metric and "acc" in f.metric and err is not None:
                finite = C.finite(err)
                if finite.size:
                    return 1.0 - float(np.median(finite[-k:])) <= self.chance_accuracy + 0.02
            if self.chance_loss and loss is not None and np.isfinite(loss).sum() >= 2:
                return float(np.median(C.finite(loss)[-k:])) >= 0.95 * self.chance_loss
            return None

        train = guessing(f.loss, f.train_err)
        val = guessing(f.val_loss, f.val_err)
        return bool(train) and val is not False


def _number(value) -> float | None:
    """A finite number, else None (a recipe or data.json may hold anything)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _int(value) -> int | None:
    """A whole number (``1150`` or ``1150.0``), else None."""
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


def _size(value) -> int | None:
    """A count of images: a whole number above 0, else None."""
    number = _int(value)
    return number if number is not None and number > 0 else None
