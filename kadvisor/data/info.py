"""Dataset facts written to a run directory's ``data.json``.

The advisor reads these (class counts for the ``class_imbalance`` rule, training-set
size for ``train_from_scratch_small_data``), so the keys are a contract:

    {"source": "sklearn:digits", "num_classes": 10, "class_names": [...],
     "image_shape": [32, 32, 3],
     "splits": {"train": {"size": 1257, "counts": {"0": 124, ...}},
                "validation": {...}, "test": {...}},      # a missing split is absent
     "balance": "none",
     "class_weight": {"0": 1.01, ...},                     # only with balance = class_weight
     "fold": 0, "num_folds": 5,                            # only with K-fold
     "skipped_files": [...]}                               # only when files were unreadable

Counts are those after class subsetting, max_per_class, imbalance, subsampling and
undersampling. With ``balance = "oversample"`` the training counts are those of the
training split itself; an epoch draws that many examples with classes equally likely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class DataInfo:
    """Facts about the data a run trains on.

    Attributes:
        source: The recipe's ``data.source``.
        num_classes: Number of classes (after ``data.classes``).
        class_names: Name of each label id.
        image_shape: ``[height, width, channels]`` of the images fed to the model.
        splits: ``{split: {"size": n, "counts": {class_name: n}}}`` for present splits.
        balance: The recipe's ``data.balance``.
        class_weight: Class id → weight when ``balance = "class_weight"``.
        fold: K-fold fold index, when K-fold.
        num_folds: K-fold fold count, when K-fold.
        skipped_files: Unreadable files the source left out.
    """

    source: str
    num_classes: int
    class_names: list[str]
    image_shape: list[int]
    splits: dict[str, dict] = field(default_factory=dict)
    balance: str = "none"
    class_weight: dict[int, float] | None = None
    fold: int | None = None
    num_folds: int | None = None
    skipped_files: list[str] = field(default_factory=list)

    @classmethod
    def from_splits(
        cls, source: str, splits, image_shape, balance: str, class_weight, skipped
    ) -> "DataInfo":
        """Builds the facts of a `kadvisor.data.splits.Splits`."""
        names = splits.class_names
        summary = {name: split_summary(s.labels, names) for name, s in splits.splits.items()}
        return cls(
            source=source,
            num_classes=len(names),
            class_names=list(names),
            image_shape=[int(d) for d in image_shape],
            splits=summary,
            balance=balance,
            class_weight=class_weight,
            fold=splits.fold,
            num_folds=splits.num_folds,
            skipped_files=list(skipped),
        )

    def to_json(self) -> dict:
        """Returns the facts as a JSON-ready dict (optional keys only when set)."""
        out = {
            "source": self.source,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "image_shape": list(self.image_shape),
            "splits": self.splits,
            "balance": self.balance,
        }
        if self.class_weight is not None:
            out["class_weight"] = {
                self.class_names[i]: float(w) for i, w in self.class_weight.items()
            }
        if self.fold is not None:
            out["fold"], out["num_folds"] = self.fold, self.num_folds
        if self.skipped_files:
            out["skipped_files"] = list(self.skipped_files)
        return out


def split_summary(labels: np.ndarray, class_names: list[str]) -> dict:
    """``{"size": n, "counts": {class_name: n}}`` for one split's labels."""
    counts = np.bincount(labels, minlength=len(class_names))
    return {
        "size": int(len(labels)),
        "counts": {name: int(n) for name, n in zip(class_names, counts)},
    }
