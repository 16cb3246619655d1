"""A finished run directory as evaluation reads it: recipe, data facts, model, a split.

The split is rebuilt from the run's resolved ``recipe.toml`` with
`kadvisor.data.load_split_arrays` (splits are seeded, so the same recipe gives the same
examples) and checked against the per-class counts ``data.json`` recorded at training
time, so a data folder that changed since is reported instead of silently scored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
        hint = (" (a K-fold parent: pass one of its fold-N directories)"
                if (path / "kfold.json").is_file() else "")
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
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: cannot load the model: {first_line}") from None


def split_arrays(run: RunFiles, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Rebuilds one split of the run, as it was evaluated during training.

    Returns:
        ``(x, y)``: float32 images in [0, 255] and int64 labels.

    Raises:
        DataError: when the recipe has no such split, or when the rebuilt split's
            per-class counts differ from those in data.json (the data changed).
    """
    from kadvisor.data import load_split_arrays

    x, y = load_split_arrays(run.recipe, split, fold=run.data.get("fold"),
                             num_folds=run.data.get("num_folds"))
    recorded = (run.data.get("splits") or {}).get(split, {}).get("counts")
    if recorded is not None:
        rebuilt = np.bincount(y, minlength=len(run.class_names))
        expected = np.array([recorded.get(name, 0) for name in run.class_names])
        if len(rebuilt) != len(expected) or np.any(rebuilt != expected):
            raise DataError(
                f"{run.path}: the {split} split rebuilt from recipe.toml has {len(y)} "
                f"examples (per class {rebuilt.tolist()}) but data.json recorded "
                f"{int(expected.sum())} ({expected.tolist()}); expected the same data "
                f"as at training time — has {run.recipe.data.source} changed?"
            )
    return x, y


def predict(model, x: np.ndarray, num_classes: int, source: Path) -> np.ndarray:
    """Class probabilities ``(N, num_classes)`` as float64, rows summing to 1.

    Args:
        model: A loaded Keras classifier (softmax output).
        x: Images as `split_arrays` returns them.
        num_classes: Classes the run was trained on.
        source: The run directory, named in errors.

    Raises:
        ModelError: when the model does not take these images or output these classes.
    """
    expected = tuple(model.input_shape[1:])
    if any(e is not None and e != g for e, g in zip(expected, x.shape[1:])) or len(expected) != x.ndim - 1:
        raise ModelError(
            f"{source}: the model takes images of shape {expected} but the split has "
            f"{tuple(x.shape[1:])}; expected recipe.toml to match the model"
        )
    proba = np.asarray(model.predict(x, batch_size=256, verbose=0), np.float64)
    # A float32 softmax sums to 1 only within ~1e-7; scikit-learn checks in float64.
    proba /= np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
    if proba.shape != (len(x), num_classes):
        raise ModelError(
            f"{source}: the model outputs {proba.shape[1:]} scores per image; expected "
            f"{num_classes} class probabilities (data.json num_classes)"
        )
    return proba


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
