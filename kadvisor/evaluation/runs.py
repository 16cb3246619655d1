"""A finished run directory as evaluation reads it: recipe, data facts, model, a split.

The split is rebuilt from the run's resolved ``recipe.toml`` and the K-fold fold in
``data.json`` (splits are seeded, so the same recipe gives the same examples), through
the same evaluation pipeline as during training, and checked against the per-class
counts ``data.json`` recorded then, so a data folder that changed since is reported
instead of silently scored. Predictions are gathered batch by batch: a fine-grained
test split at 448×448 would not fit in memory as one float32 array.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kadvisor import rundir
from kadvisor.errors import DataError, InputError, ModelError


@dataclass
class RunFiles:
    """The files of one run directory that evaluation needs.

    Attributes:
        path: The run directory.
        recipe: The resolved recipe (`kadvisor.recipe.Recipe`) from recipe.toml.
        data: The ``data.json`` facts.
    """

    path: Path
    recipe: object
    data: dict

    @property
    def class_names(self) -> list[str]:
        """Name of each label id."""
        return list(self.data["class_names"])


def open_run(path: str | os.PathLike) -> RunFiles:
    """Reads a run directory's recipe and data facts; checks its model is there.

    Raises:
        InputError: when ``path`` is not a finished kadvisor run directory.
    """
    from kadvisor.recipe import load_recipe

    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a directory; expected a run directory from kadvisor fit")
    missing = [name for name in (rundir.RECIPE, rundir.DATA, rundir.MODEL)
               if not (path / name).is_file()]
    if missing:
        status = _status(path)
        if status.get("status") == "failed" and rundir.MODEL in missing:
            raise InputError(f"{path}: the run failed before its first epoch, so it has no model to "
                             f"evaluate: {status.get('error', 'no error recorded')}")
        hint = (" (a K-fold parent: pass one of its fold-N directories)"
                if (path / rundir.KFOLD).is_file() else "")
        raise InputError(
            f"{path}: no {', '.join(missing)}; expected a finished run directory from "
            f"kadvisor fit{hint}"
        )
    try:
        data = rundir.read_json(path / rundir.DATA)
    except (OSError, ValueError) as e:
        raise InputError(f"{path / rundir.DATA}: unreadable ({e}); expected JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("class_names"), list):
        raise InputError(f"{path / rundir.DATA}: no 'class_names' list; expected kadvisor's data.json")
    return RunFiles(path, load_recipe(path / rundir.RECIPE), data)


def _status(path: Path) -> dict:
    try:
        status = rundir.read_json(path / rundir.METRICS)
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def load_model(run: RunFiles):
    """Loads ``model.keras`` with ``safe_mode=True``.

    Raises:
        ModelError: naming the file when Keras cannot load it.
    """
    import keras

    # Importing these registers kadvisor's custom layers with Keras's serialisation.
    import kadvisor.models.heads.bilinear_layers  # noqa: F401
    import kadvisor.models.heads.compact_bilinear  # noqa: F401
    import kadvisor.models.preprocess  # noqa: F401

    path = run.path / rundir.MODEL
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as e:  # Keras raises many types for a bad or foreign file
        text = str(e).strip()
        if "safe_mode" in text or "arbitrary code" in text:
            # Keras's message is long and, for nested models, generic; say what happened.
            raise ModelError(f"{path}: refused by Keras safe mode: the file holds Python code (a Lambda "
                             f"layer's function or a pickled object), which kadvisor never runs from a "
                             f"file; expected a model saved by kadvisor fit") from None
        first_line = text.splitlines()[0] if text else type(e).__name__
        raise ModelError(f"{path}: cannot load the model: {first_line}") from None


@dataclass
class SplitPredictions:
    """A model's predictions on one split, gathered batch by batch.

    Attributes:
        y: True label of each example, in the split's order.
        proba: Class probabilities ``(N, K)`` as float64, rows summing to 1.
        mistake_images: Position in the split → image (float32 in [0, 255]) of the
            most confident mistakes asked for (see `predict_split`).
    """

    y: np.ndarray
    proba: np.ndarray
    mistake_images: dict[int, np.ndarray] = field(default_factory=dict)


def split_dataset(run: RunFiles, split: str):
    """Rebuilds one split of the run as it was evaluated during training.

    Returns:
        An unbatched ``tf.data.Dataset`` of ``(float32 image in [0, 255], label)``:
        no shuffling, no augmentation, centre crop.

    Raises:
        DataError: when the recipe has no such split, or when the rebuilt split's
            per-class counts differ from those in data.json (the data changed).
    """
    from kadvisor.data.pipeline import check_sizes, eval_dataset
    from kadvisor.data.sources import load_source
    from kadvisor.data.splits import SPLIT_NAMES, make_splits

    recipe = run.recipe
    if split not in SPLIT_NAMES:
        raise DataError(f"split: got {split!r}; expected one of {', '.join(SPLIT_NAMES)}")
    check_sizes(recipe.data)
    source = load_source(recipe.data, recipe.seed)
    splits = make_splits(source, recipe.data, recipe.seed, fold=run.data.get("fold"),
                         num_folds=run.data.get("num_folds"))
    if split not in splits.splits:
        raise DataError(
            f"{run.path}: the recipe has no {split!r} split; expected one of "
            f"{', '.join(splits.splits)}"
        )
    if list(splits.class_names) != run.class_names:
        raise DataError(
            f"{run.path}: the classes rebuilt from recipe.toml "
            f"({', '.join(splits.class_names[:5])}, ...) differ from data.json's "
            f"({', '.join(run.class_names[:5])}, ...); expected the same data as at training time"
        )
    rebuilt = splits.splits[split].counts(len(splits.class_names))
    recorded = (run.data.get("splits") or {}).get(split, {}).get("counts")
    if recorded is not None:
        expected = np.array([recorded.get(name, 0) for name in run.class_names])
        if np.any(rebuilt != expected):
            raise DataError(
                f"{run.path}: the {split} split rebuilt from recipe.toml has "
                f"{int(rebuilt.sum())} examples (per class {rebuilt.tolist()}) but data.json "
                f"recorded {int(expected.sum())} ({expected.tolist()}); expected the same "
                f"data as at training time — has {recipe.data.source} changed?"
            )
    return eval_dataset(source, splits, split, recipe.data)


def predict_split(run: RunFiles, model, split: str, *, keep_mistakes: int = 0,
                  batch_size: int = 64) -> SplitPredictions:
    """Predicts one split batch by batch, never holding all its images in memory.

    Args:
        run: The run directory's files.
        model: The run's loaded model.
        split: "train", "validation" or "test".
        keep_mistakes: Keep the images of this many most confident mistakes (the
            same ones `kadvisor.evaluation.evaluate.most_confident_mistakes` lists).
        batch_size: Images per prediction batch.

    Returns:
        The `SplitPredictions`.

    Raises:
        DataError: see `split_dataset`.
        ModelError: when the model does not take these images or output these classes.
    """
    dataset = split_dataset(run, split)
    _check_input_shape(model, tuple(dataset.element_spec[0].shape), run.path)
    num_classes = len(run.class_names)
    ys, probas = [], []
    kept_index, kept_confidence, kept_images = np.zeros(0, np.int64), np.zeros(0), []
    offset = 0
    for x, y in dataset.batch(batch_size).as_numpy_iterator():
        proba = np.asarray(model.predict_on_batch(x), np.float64)
        if proba.shape != (len(x), num_classes):
            raise ModelError(
                f"{run.path}: the model outputs {proba.shape[1:]} scores per image; "
                f"expected {num_classes} class probabilities (data.json num_classes)"
            )
        # A float32 softmax sums to 1 only within ~1e-7; scikit-learn checks in float64.
        proba /= np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
        ys.append(y)
        probas.append(proba)
        if keep_mistakes:
            wrong = np.flatnonzero(proba.argmax(axis=1) != y)
            # Earlier candidates first, so a stable sort keeps the lower index on ties.
            index = np.concatenate([kept_index, offset + wrong])
            confidence = np.concatenate([kept_confidence, proba[wrong].max(axis=1)])
            images = kept_images + list(x[wrong])
            best = np.argsort(-confidence, kind="stable")[:keep_mistakes]
            kept_index, kept_confidence = index[best], confidence[best]
            kept_images = [images[i] for i in best]
        offset += len(x)
    proba = np.concatenate(probas) if probas else np.zeros((0, num_classes))
    y = np.concatenate(ys).astype(np.int64) if ys else np.zeros(0, np.int64)
    return SplitPredictions(y, proba, dict(zip(kept_index.tolist(), kept_images)))


def _check_input_shape(model, shape: tuple, source: Path) -> None:
    expected = tuple(model.input_shape[1:])
    if len(expected) != len(shape) or any(e is not None and e != g for e, g in zip(expected, shape)):
        raise ModelError(
            f"{source}: the model takes images of shape {expected} but the split has "
            f"{shape}; expected recipe.toml to match the model"
        )


def scores(y: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None, num_classes: int) -> dict:
    """Accuracy, macro-F1, worst-class recall and (with probabilities) log loss.

    Macro-F1 and worst-class recall are taken over the classes present in ``y``.

    Args:
        y: True labels.
        predicted: Predicted labels.
        proba: Class probabilities, or None (a vote has none).
        num_classes: Number of classes of the run.

    Returns:
        ``{"accuracy", "macro_f1", "worst_recall"[, "log_loss"]}`` as floats.
    """
    from sklearn.metrics import accuracy_score, f1_score, log_loss, recall_score

    labels = np.arange(num_classes)
    present = np.unique(y)
    out = {
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, labels=present, average="macro", zero_division=0)),
        "worst_recall": float(recall_score(y, predicted, labels=present, average=None,
                                           zero_division=0).min()),
    }
    if proba is not None:
        out["log_loss"] = float(log_loss(y, proba, labels=labels))
    return out
