"""Rules on the recipe and dataset facts of a kadvisor run directory:
class_imbalance, unfreeze_backbone, train_from_scratch_small_data, low_resolution.

They return None (silently) when the run does not carry a recipe or ``data.json``:
for a plain Keras log these questions simply do not arise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Action, Finding, ramp, undecided
from kadvisor.advisor.readers.run import get_path
from kadvisor.advisor.rules.registry import rule


def _train_counts(data: dict | None) -> dict[str, int]:
    counts = get_path(data, "splits.train.counts") or {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, (int, float))}


def num_classes(f: RunFeatures) -> int | None:
    """Number of classes from ``data.json`` (its ``num_classes``, else its training counts)."""
    n = get_path(f.run.data, "num_classes")
    if isinstance(n, int):
        return n
    counts = _train_counts(f.run.data)
    return len(counts) or None


def _image_size(f: RunFeatures) -> int | None:
    size = get_path(f.run.recipe, "data.image_size")
    if isinstance(size, list) and size:
        return int(min(size))
    shape = get_path(f.run.data, "image_shape")
    if isinstance(shape, list) and len(shape) >= 2:
        return int(min(shape[:2]))
    return None


@rule("class_imbalance", curve=False)
def class_imbalance(f: RunFeatures, th: dict) -> Finding | None:
    """The training split's largest class outnumbers its smallest by a large factor."""
    counts = _train_counts(f.run.data)
    if len(counts) < 2 or min(counts.values()) <= 0:
        return None
    ratio = max(counts.values()) / min(counts.values())
    balance = get_path(f.run.recipe, "data.balance", "none")
    loss = get_path(f.run.recipe, "loss.name", "crossentropy")
    if ratio < th["imbalance_ratio"] or balance != "none" or loss == "focal":
        return None
    small = min(counts, key=counts.get)
    large = max(counts, key=counts.get)
    return Finding(
        "class_imbalance", "warning", ramp(ratio, th["imbalance_ratio"], 3 * th["imbalance_ratio"]) * 0.5 + 0.5,
        f"training classes are skewed {ratio:.0f}:1 ('{large}' {counts[large]} vs '{small}' {counts[small]} images)",
        {"ratio": ratio, "largest": {large: counts[large]}, "smallest": {small: counts[small]}},
        [
            Action({"data.balance": "class_weight"}, "weight the loss so each class counts equally"),
            Action({"data.balance": "oversample"}, "or show rare classes more often"),
            Action({"loss.name": "focal"}, "or focus the loss on hard, rare examples"),
        ],
    )


def stage_value(stage: dict, path: str, default: Any = None) -> Any:
    """A dotted-path override of a ``[[stages]]`` table, written either way TOML allows
    (``"optimizer.learning_rate" = 1e-4`` or ``optimizer.learning_rate = 1e-4``)."""
    if path in stage:
        return stage[path]
    return get_path(stage, path, default)


def _head_stage(f: RunFeatures) -> tuple[str, int | None] | None:
    """(name, index in the recipe's stages) of the head-only stage the run ended in;
    None when it did not end in one. Read from the history's ``stage`` column when
    logged (a stage named in the recipe, or named like "head" without a recipe), else
    from the recipe's last ``[[stages]]`` table."""
    stages = get_path(f.run.recipe, "stages") or []
    names = [str(s.get("name", f"stage{i + 1}")) for i, s in enumerate(stages)]
    if f.stage and f.stage[-1]:
        last = f.stage[-1]
        if last in names:
            i = len(names) - 1 - names[::-1].index(last)
            return (last, i) if stages[i].get("trainable") == "head" and i == len(stages) - 1 else None
        return (last, None) if not stages and "head" in last.lower() else None
    if stages and stages[-1].get("trainable") == "head":
        return names[-1], len(stages) - 1
    return None


def _stage_converged(f: RunFeatures, name: str, th: dict) -> bool | None:
    """Whether validation had stopped improving by the end of the stage (no curve
    still improving by ``improve_min``, see `RunFeatures.improving_curve`); None when
    the history has fewer than 3 epochs of it."""
    rows = [i for i, s in enumerate(f.stage or []) if s == name]
    if len(rows) < 3 or not f.has_validation:
        return None
    return RunFeatures.from_run(f.run.select(rows)).improving_curve(th) is None


@rule("unfreeze_backbone", curve=False)
def unfreeze_backbone(f: RunFeatures, th: dict) -> Finding | None:
    """The run ended in a head-only stage whose validation converged, no stage
    fine-tunes the backbone after it, and the run is not already near-perfect."""
    head = _head_stage(f)
    if head is None or near_perfect(f, th) is not None:
        return None
    name, index = head
    converged = _stage_converged(f, name, th)
    if converged is False:
        return None  # the head is still learning: still_improving says train it longer
    stages = get_path(f.run.recipe, "stages") or []
    lr = get_path(f.run.recipe, "optimizer.learning_rate")
    head_lr = stage_value(stages[index], "optimizer.learning_rate", lr) if index is not None else lr
    if isinstance(head_lr, (int, float)) and f.run.recipe is not None:
        new_stage = {"name": "finetune", "trainable": "all",
                     "optimizer": {"learning_rate": float(f"{head_lr * 0.1:.3g}")}}
        patch: dict[str, Any] = {"stages": [*stages, new_stage]}
    else:
        patch = {"stages": "+ {trainable = 'all', optimizer.learning_rate = ×0.1}"}
    how = "converged" if converged else "ended"
    return Finding(
        "unfreeze_backbone", "warning", 0.8 if converged else 0.5,
        f"head-only stage '{name}' {how} and nothing fine-tunes the backbone after it",
        {"stage": name, "converged": converged, "head_learning_rate": head_lr},
        [Action(patch, "fine-tuning all layers at a 10× lower rate after the head converges "
                "usually gains several points")],
    )


# Smallest input of the keras.applications backbones kadvisor offers (ResNet50, VGG16,
# MobileNetV2, EfficientNet...; Xception and InceptionV3 need more) and their channels.
IMAGENET_MIN_SIZE = 32
TRANSFER_BACKBONE = "resnet50"


def achieved_error(f: RunFeatures) -> float | None:
    """The run's error on validation data as a fraction of chance-level error.

    0 is perfect, 1 is guessing. Read from the validation accuracy of the model the run
    saved (``metrics.json`` ``best``, the epoch ``train.monitor`` chose) when present, else
    from the best epoch of the validation metric (a [0, 1] accuracy-like metric only);
    None when neither is known. Never from the test split: advice that read it would be
    chosen on the data it is scored on.
    """
    classes = num_classes(f)
    if not classes or classes < 2:
        return None
    acc = None
    saved = get_path(f.run.metrics, "best") or {}
    for key in ("val_accuracy", "val_acc", "val_categorical_accuracy", "val_sparse_categorical_accuracy"):
        if isinstance(saved.get(key), (int, float)) and not isinstance(saved.get(key), bool):
            acc = float(saved[key])
            break
    if acc is None and f.bounded and f.val_err is not None and "acc" in (f.metric or ""):
        finite = C.finite(f.val_err)
        acc = 1.0 - float(np.min(finite)) if finite.size else None
    if acc is None or not np.isfinite(acc):
        return None
    chance = 1.0 - 1.0 / classes
    return max(0.0, 1.0 - acc) / chance


def near_perfect(f: RunFeatures, th: dict) -> float | None:
    """The achieved error when it is below ``near_perfect`` of chance (else None)."""
    err = achieved_error(f)
    return err if err is not None and err < th["near_perfect"] else None


@rule("train_from_scratch_small_data", curve=False)
def train_from_scratch_small_data(f: RunFeatures, th: dict) -> Finding | None:
    """Training from random weights with few images per class, when the run leaves
    room to gain and ImageNet weights can be used on its input."""
    if get_path(f.run.recipe, "model.weights") != "none":
        return None
    counts = _train_counts(f.run.data)
    size = get_path(f.run.data, "splits.train.size")
    classes = num_classes(f)
    per_class = np.median(list(counts.values())) if counts else (size / classes if size and classes else None)
    if per_class is None or per_class >= th["few_per_class"]:
        return None
    if near_perfect(f, th) is not None:
        return None  # already near-perfect: pretrained weights have nothing to add
    image = _image_size(f)
    if image is not None and image < IMAGENET_MIN_SIZE:
        return undecided("train_from_scratch_small_data", f"{image}-pixel inputs are below the "
                         f"{IMAGENET_MIN_SIZE} pixels ImageNet backbones accept; pretrained weights do not apply")
    backbone = str(get_path(f.run.recipe, "model.backbone", ""))
    patch: dict[str, Any] = {"model.weights": "imagenet"}
    if backbone.startswith("small_"):  # built-in CNNs have no pretrained weights
        patch = {"model.backbone": TRANSFER_BACKBONE, "model.weights": "imagenet"}
    if get_path(f.run.recipe, "data.channels", 3) != 3:
        patch["data.channels"] = 3  # grayscale is tiled to RGB by the pipeline
    err = achieved_error(f)
    done = f" (validation/test error {100 * err:.0f}% of chance)" if err is not None else ""
    return Finding(
        "train_from_scratch_small_data", "warning", ramp(th["few_per_class"] - per_class, 0, th["few_per_class"] / 2) * 0.4 + 0.5,
        f"training from scratch with about {per_class:.0f} images per class{done}: start from pretrained weights",
        {"images_per_class": float(per_class), "backbone": backbone, "error_of_chance": err},
        [Action(patch, "transfer learning from ImageNet needs far fewer images per class")],
    )


@rule("low_resolution", curve=False)
def low_resolution(f: RunFeatures, th: dict) -> Finding | None:
    """Fine-grained task (many classes) or bilinear head at a small input size."""
    size = _image_size(f)
    if size is None:
        return None
    classes = num_classes(f) or 0
    bilinear = "bilinear" in str(get_path(f.run.recipe, "model.head", ""))
    want = th["bilinear_resolution"] if bilinear else th["min_resolution"]
    if not (bilinear or classes >= th["fine_grained_classes"]) or size >= want:
        return None
    if near_perfect(f, th) is not None:
        return None
    why = "a bilinear head" if bilinear else f"{classes} classes (fine-grained)"
    return Finding(
        "low_resolution", "warning", 0.7,
        f"input size {size} is small for {why}: fine details need about {want} pixels",
        {"image_size": size, "num_classes": classes, "bilinear": bilinear, "wanted": want},
        [Action({"data.image_size": [want, want]}, "higher resolution keeps the small "
                "discriminative parts visible (448 vs 224 was worth ~10 points on CUB)")],
    )
