"""`kadvisor ensemble RUN_DIR...`: several runs' models combined on their common test split.

``mean`` averages the members' class probabilities (soft voting); ``vote`` takes the
class most members predict (hard voting), ties going to the class with the higher
mean probability. Each member is scored beside the ensemble, so the gain is visible.

A K-fold parent directory (with ``kfold.json``) stands for its fold runs. The runs
must have been tested on the same examples: the recipe fields that choose the test
split, the class names and the recorded test counts must agree, else the ensemble is
refused before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kadvisor import rundir
from kadvisor.errors import DataError, InputError
from kadvisor.evaluation.runs import RunFiles, load_model, open_run, predict_split, scores

METHODS = ("mean", "vote")
# Recipe fields that choose which examples form the test split (see data/splits.py).
# The seed matters only when the test split is carved from the training data.
TEST_SPLIT_FIELDS = ("data.source", "data.data_dir", "data.test_split", "data.test_fraction",
                     "data.classes", "seed")


@dataclass
class EnsembleResult:
    """Scores of each member and of their combination on the test split.

    Attributes:
        method: "mean" or "vote".
        size: Number of test examples.
        members: ``[(run directory, scores)]`` in the order given.
        ensemble: The combination's scores (no log loss for a vote).
    """

    method: str
    size: int
    members: list[tuple[Path, dict]]
    ensemble: dict

    def summary_lines(self) -> list[str]:
        """A table: one row per member, then the ensemble and the members' mean."""
        names = [_short_name(path) for path, _ in self.members]
        label = f"ensemble ({self.method} of {len(self.members)})"
        width = max(len(label), *map(len, names))
        columns = ("accuracy", "macro_f1", "worst_recall", "log_loss")
        header = f"{'run':<{width}}  " + "  ".join(f"{c:>12}" for c in columns)
        row = lambda name, s: f"{name:<{width}}  " + "  ".join(  # noqa: E731
            f"{s[c]:>12.4f}" if c in s else f"{'-':>12}" for c in columns)
        mean = {c: float(np.mean([s[c] for _, s in self.members])) for c in columns}
        return [
            f"test split: {self.size} examples",
            header,
            *(row(name, s) for name, (_, s) in zip(names, self.members)),
            row("members' mean", mean),
            row(label, self.ensemble),
        ]


def expand_runs(paths) -> list[Path]:
    """Replaces each K-fold parent directory by its fold runs (from kfold.json)."""
    out = []
    for path in map(Path, paths):
        if (path / rundir.KFOLD).is_file() and not (path / rundir.MODEL).exists():
            try:
                folds = rundir.read_json(path / rundir.KFOLD)["runs"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise InputError(f"{path / rundir.KFOLD}: unreadable ({e}); expected kadvisor's "
                                 f"kfold.json with a 'runs' list") from None
            out += [path / name for name in folds]
        else:
            out.append(path)
    return out


def check_same_test_split(runs: list[RunFiles]) -> None:
    """Refuses runs that were not tested on the same examples.

    Raises:
        DataError: naming both runs and the first field that differs.
    """
    first = runs[0]
    for other in runs[1:]:
        fields = [f for f in TEST_SPLIT_FIELDS
                  if not (f == "seed" and first.recipe.data.test_split and other.recipe.data.test_split)]
        for name in fields:
            a, b = first.recipe.get(name), other.recipe.get(name)
            if a != b:
                raise DataError(
                    f"{other.path}: {name} = {b!r} but {first.path} has {a!r}; expected runs "
                    f"tested on the same split (same data source, test split, classes and seed)"
                )
        facts = [(r.class_names, (r.data.get("splits") or {}).get("test")) for r in (first, other)]
        if facts[0] != facts[1]:
            raise DataError(
                f"{other.path}: data.json records other classes or test counts than "
                f"{first.path}; expected runs tested on the same split"
            )


def ensemble_runs(paths, method: str = "mean") -> EnsembleResult:
    """Scores several runs and their ensemble on the common test split.

    Args:
        paths: Run directories (a K-fold parent counts as its folds); at least two runs.
        method: "mean" (average probabilities) or "vote" (majority of predictions).

    Returns:
        The `EnsembleResult`.

    Raises:
        InputError: for an unknown method, fewer than two runs or a non-run directory.
        DataError: when the runs' test splits differ.
        ModelError: when a model cannot be loaded or does not fit its data.
    """
    if method not in METHODS:
        raise InputError(f"--method: got {method!r}; expected one of {', '.join(METHODS)}")
    runs = [open_run(p) for p in expand_runs(paths)]
    if len(runs) < 2:
        raise InputError(f"got {len(runs)} run; expected at least two run directories to ensemble")
    check_same_test_split(runs)
    num_classes = len(runs[0].class_names)
    y = None
    members, probas = [], []
    for run in runs:
        predictions = predict_split(run, load_model(run), "test")
        if y is None:
            y = predictions.y
        elif not np.array_equal(y, predictions.y):
            raise DataError(f"{run.path}: its test split has other labels or another order "
                            f"than {runs[0].path}'s; expected the same examples")
        probas.append(predictions.proba)
        members.append((run.path, scores(y, predictions.proba.argmax(axis=1), predictions.proba,
                                         num_classes)))
    proba, predicted = combine(np.stack(probas), method)
    return EnsembleResult(method, len(y), members, scores(y, predicted, proba, num_classes))


def combine(probas: np.ndarray, method: str) -> tuple[np.ndarray | None, np.ndarray]:
    """Combines members' probabilities ``(M, N, K)``.

    Returns:
        ``(probabilities or None for a vote, predicted labels)``.
    """
    mean = probas.mean(axis=0)
    if method == "mean":
        return mean, mean.argmax(axis=1)
    k = probas.shape[-1]
    votes = np.eye(k)[probas.argmax(axis=-1)].sum(axis=0)  # (N, K) vote counts
    # A mean probability is below 1, so it only breaks ties between vote counts.
    return None, (votes + mean).argmax(axis=1)


def _short_name(path: Path) -> str:
    # Fold runs are all called fold-N: keep their parent's name in front.
    return f"{path.parent.name}/{path.name}" if path.name.startswith("fold-") else path.name

