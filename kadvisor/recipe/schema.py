"""The recipe schema: every section and field, with default, constraint and help.

This module is the single source of truth for what a recipe may contain. The loader,
``--set`` overrides, ``[[stages]]`` overrides, the advisor's patches and the tuner's
search space all resolve dotted paths against these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

from kadvisor.recipe.advisor_section import AdvisorSection
from kadvisor.recipe.fields import (
    between,
    each,
    ge,
    gt,
    length,
    all_of,
    file_name,
    off_or_at_least,
    one_of,
    option,
    registered,
    section,
    seed_range,
)
from kadvisor.registry import BACKBONES, HEADS

_POSITIVE_INTS = all_of(each(gt(0)))


@dataclass
class Augment:
    """Training-time augmentation with Keras preprocessing layers (0 = off)."""

    flip: str = option(
        "none", "random flips", one_of("none", "horizontal", "vertical", "both")
    )
    crop: bool = option(
        False, "random crop of data.image_size from data.resize_to (centre crop at eval)"
    )
    rotation: float = option(0.0, "max rotation as a fraction of a full turn", between(0, 0.5))
    zoom: float = option(0.0, "max zoom in/out as a fraction of the size", between(0, 0.9))
    translate: float = option(0.0, "max shift as a fraction of the size", between(0, 0.5))
    brightness: float = option(0.0, "max brightness change as a fraction of the range", between(0, 1))
    contrast: float = option(0.0, "max contrast factor change", between(0, 1))
    saturation: float = option(0.0, "max saturation factor change (RGB only)", between(0, 1))
    hue: float = option(0.0, "max hue shift as a fraction of the colour wheel (RGB only)", between(0, 0.5))
    noise: float = option(0.0, "std of gaussian noise as a fraction of the pixel range", between(0, 1))


@dataclass
class Data:
    """Where the images come from and how they are split and fed."""

    source: str = option(
        "sklearn:digits",
        "sklearn:digits | folder:PATH | tfds:NAME | npz:PATH | synthetic:textures",
    )
    data_dir: str = option("", "TFDS data_dir ('' = TFDS default)")
    train_split: str = option("train", "TFDS split used for training")
    validation_split: str = option(
        "", "TFDS split used for validation ('' = carve data.val_fraction from training)"
    )
    test_split: str = option(
        "", "TFDS split used for testing ('' = carve data.test_fraction from training)"
    )
    val_fraction: float = option(
        0.1, "fraction of the labelled data held out for validation (stratified)",
        between(0, 1, high_open=True),
    )
    test_fraction: float = option(
        0.2, "fraction of the labelled data held out for testing (stratified)",
        between(0, 1, high_open=True),
    )
    image_size: list[int] = option(
        [32, 32], "model input size [height, width]", all_of(length(2), each(gt(0)))
    )
    resize_to: list[int] = option(
        [], "resize to [height, width] before cropping ([] = data.image_size)",
        all_of(length(0, 2), each(gt(0))),
    )
    channels: int = option(3, "colour channels fed to the model", between(1, 3))
    classes: list[str] = option([], "train on this subset of class names ([] = all)")
    subsample: float = option(
        1.0, "fraction of the training split used (stratified)", between(0, 1, low_open=True)
    )
    cache: bool = option(True, "cache decoded images in memory")
    shuffle: bool = option(True, "shuffle the training set, reshuffled every epoch")
    shuffle_buffer: int = option(10000, "shuffle buffer size in examples", gt(0))
    balance: str = option(
        "none", "class balancing of the training split",
        one_of("none", "class_weight", "oversample", "undersample"),
    )
    max_per_class: int = option(0, "cap on training images per class (0 = no cap)", ge(0))
    imbalance: float = option(
        0.0,
        "make the training split long-tailed: smallest/largest class ratio (0 = off)",
        between(0, 1),
    )
    augment: Augment = section(Augment, "training-time augmentation")


@dataclass
class Model:
    """Backbone, head and classifier."""

    backbone: str = option("small_cnn", "feature extractor", registered(BACKBONES))
    weights: str = option(
        "none", "'imagenet', 'none', or a path to a .weights.h5 file for the backbone"
    )
    head: str = option("gap", "pooling head on the backbone features", registered(HEADS))
    feature_layer: str = option(
        "", "backbone layer whose output feeds the head ('' = the backbone's output)"
    )
    pooling_dim: int = option(8192, "output dimension of compact bilinear pooling", gt(0))
    sketch: str = option(
        "tensor_sketch", "compact bilinear method", one_of("tensor_sketch", "random_maclaurin")
    )
    signed_sqrt: bool = option(True, "signed square root after bilinear pooling")
    l2_normalize: bool = option(True, "L2 normalisation after bilinear pooling")
    dropout: float = option(0.0, "dropout rate before the classifier", between(0, 1, high_open=True))
    width: int = option(32, "base number of filters of the built-in CNNs", gt(0))


@dataclass
class Optimizer:
    """Optimizer and its regularisation."""

    name: str = option("adam", "optimizer", one_of("sgd", "adam", "adamw", "rmsprop"))
    learning_rate: float = option(1e-3, "base learning rate", gt(0))
    momentum: float = option(0.9, "momentum (sgd, rmsprop)", between(0, 1, high_open=True))
    nesterov: bool = option(False, "Nesterov momentum (sgd)")
    weight_decay: float = option(0.0, "decoupled weight decay (0 = off)", ge(0))
    clipnorm: float = option(0.0, "clip each gradient to this norm (0 = off)", ge(0))


@dataclass
class Schedule:
    """Learning-rate schedule; the base rate is optimizer.learning_rate."""

    name: str = option(
        "constant", "schedule",
        one_of("constant", "multistep", "cosine", "exponential", "plateau"),
    )
    unit: str = option(
        "epoch", "unit of schedule.steps and schedule.warmup", one_of("epoch", "step")
    )
    steps: list[int] = option(
        [], "multistep boundaries (caffe style: lr *= gamma at each)", each(gt(0))
    )
    gamma: float = option(
        0.1, "multistep factor per boundary; exponential factor per unit", gt(0)
    )
    warmup: int = option(0, "linear warm-up length in schedule.unit (cosine)", ge(0))
    min_lr: float = option(0.0, "floor of the learning rate (cosine, plateau)", ge(0))
    patience: int = option(5, "plateau: epochs without improvement before decaying", gt(0))
    factor: float = option(0.2, "plateau: multiply the rate by this", between(0, 1, high_open=True))


@dataclass
class Loss:
    """Training loss."""

    name: str = option("crossentropy", "loss", one_of("crossentropy", "focal"))
    label_smoothing: float = option(0.0, "label smoothing", between(0, 1, high_open=True))
    gamma: float = option(2.0, "focal loss focusing parameter", ge(0))
    alpha: float = option(0.25, "focal loss weighting factor", between(0, 1))


@dataclass
class Train:
    """The training loop."""

    epochs: int = option(30, "number of epochs", gt(0))
    batch_size: int = option(
        32, "examples per batch on one device (x replicas with distribute.scale_batch)", gt(0)
    )
    early_stopping: int = option(
        0, "stop after this many epochs without improvement of train.monitor (0 = off)", ge(0)
    )
    monitor: str = option("val_loss", "quantity for checkpointing and early stopping")
    accumulate: int = option(1, "gradient accumulation: micro-batches per update", gt(0))
    checkpoint: bool = option(True, "keep the best model by train.monitor (else the last)")
    checkpoint_every: float = option(
        30.0, "seconds of training between commits of the resumable state (weights, optimizer, "
        "best model; every stage's end is committed too; 0 = every epoch)", ge(0),
    )
    precision: str = option(
        "float32", "Keras dtype policy; mixed policies keep the classifier output float32",
        one_of("float32", "mixed_float16", "mixed_bfloat16"),
    )
    jit_compile: str = option(
        "auto", "XLA compilation of the train step ('auto' = Keras decides)",
        one_of("auto", "on", "off"),
    )
    tensorboard: bool = option(
        True, "write TensorBoard logs (epoch scalars, one run per stage) to RUN/tensorboard/"
    )


@dataclass
class Distribute:
    """Devices and replica scaling."""

    strategy: str = option(
        "auto", "tf.distribute strategy ('auto': TPU if found, mirrored over 2+ GPUs, else default)",
        one_of("auto", "one_device", "mirrored", "tpu", "multi_worker"),
    )
    device: str = option(
        "", "device of strategy 'one_device', e.g. '/gpu:1' or '/cpu:0' ('' = first GPU, else CPU)"
    )
    devices: list[str] = option(
        [], "devices of strategy 'mirrored' ([] = every GPU, else every CPU device)"
    )
    tpu: str = option("", "TPU address for strategy 'tpu' ('' = auto-detect)")
    scale_batch: bool = option(
        True, "global batch = train.batch_size x replicas (each replica keeps its batch)"
    )
    lr_scaling: str = option(
        "linear", "with a scaled batch, scale the learning rate: x replicas ('linear', "
        "Goyal et al. 2017), x sqrt(replicas) ('sqrt'), or not ('none')",
        one_of("linear", "sqrt", "none"),
    )
    workers: list[str] = option(
        [], "host:port of every worker of strategy 'multi_worker', worker 0 (the chief, which "
        "writes the run directory) first; each runs kadvisor fit with its --worker-index "
        "([] = the cluster in TF_CONFIG)"
    )
    timeout: float = option(
        120.0, "seconds a 'multi_worker' worker waits for its peers (at start-up, and in "
        "each collective step) before stopping with an error", gt(0)
    )


@dataclass
class Validation:
    """How the model is validated."""

    kfold: int = option(0, "stratified K-fold cross-validation folds (0 = off)", off_or_at_least(2))


@dataclass
class Search:
    """KerasTuner search over recipe fields (``kadvisor tune``)."""

    algorithm: str = option("hyperband", "search algorithm", one_of("hyperband", "random", "bayesian"))
    objective: str = option("val_accuracy", "metric to optimise")
    direction: str = option("auto", "optimise up or down ('auto' infers it from the name)", one_of("auto", "max", "min"))
    max_epochs: int = option(20, "most epochs one trial trains (hyperband)", gt(0))
    factor: int = option(3, "hyperband reduction factor", ge(2))
    hyperband_iterations: int = option(1, "hyperband brackets sweeps", gt(0))
    max_trials: int = option(10, "trials (random, bayesian)", gt(0))
    executions_per_trial: int = option(1, "models trained per trial (averaged)", gt(0))
    seed: int = option(0, "seed of the search algorithm (0 = the recipe's seed)", seed_range())
    subsample: float = option(1.0, "fraction of the training split used while searching", between(0, 1, low_open=True))
    classes: list[str] = option([], "class subset used while searching ([] = all)")
    space: dict = option({}, "dotted path -> distribution, e.g. { log_uniform = [1e-4, 1e-1] }")


@dataclass
class Stage:
    """One stage of staged (transfer) training.

    Attributes:
        name: Shown in logs and the ``stage`` column of history.csv.
        trainable: "head", "all" or "from:LAYER_NAME".
        overrides: Dotted path → value applied to the recipe for this stage.
    """

    name: str = ""
    trainable: str = "all"
    overrides: dict = None  # type: ignore[assignment]


@dataclass
class Recipe:
    """A whole recipe; see ``kadvisor recipe show`` for every field with its help."""

    name: str = option("run", "run name: prefix of the run directory", file_name())
    seed: int = option(42, "random seed for splits, initialisation and shuffling", seed_range())
    data: Data = section(Data, "data source, splits and input pipeline")
    model: Model = section(Model, "backbone, head, classifier")
    optimizer: Optimizer = section(Optimizer, "optimizer")
    schedule: Schedule = section(Schedule, "learning-rate schedule")
    loss: Loss = section(Loss, "loss")
    train: Train = section(Train, "training loop")
    distribute: Distribute = section(Distribute, "devices and replica scaling")
    validation: Validation = section(Validation, "validation")
    advisor: AdvisorSection = section(AdvisorSection, "advisor thresholds (kadvisor diagnose)")
    search: Search = section(Search, "hyperparameter search (kadvisor tune)")
    stages: list = option([], "staged training: [[stages]] tables")

    # Where the recipe came from (not fields): lets `diagnose --apply` and the tuner
    # edit the user's own file and keep their comments.
    source_path = None
    source_text = None

    def get(self, path: str):
        """Returns the value at a dotted path, e.g. ``recipe.get("optimizer.learning_rate")``."""
        from kadvisor.recipe.paths import get_path

        return get_path(self, path)

    def set(self, path: str, value) -> None:
        """Validates and sets a dotted path in place (raises `PathError` if invalid)."""
        from kadvisor.recipe.paths import set_path

        set_path(self, path, value)

    def to_dict(self) -> dict:
        """Returns the recipe as nested plain tables, every default included."""
        from kadvisor.recipe.render import to_dict

        return to_dict(self)

    def for_stage(self, index: int) -> "Recipe":
        """Returns a copy with stage ``index``'s overrides applied."""
        import copy

        out = copy.deepcopy(self)
        for path, value in self.stages[index].overrides.items():
            out.set(path, value)
        return out
