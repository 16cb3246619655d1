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
from kadvisor.advisor.findings import Action, Finding, ramp
from kadvisor.advisor.rules.registry import rule


def get_path(tree: dict | None, path: str, default: Any = None) -> Any:
    """Reads a dotted path from a nested dict (the recipe), ``default`` if absent."""
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _train_counts(data: dict | None) -> dict[str, int]:
    counts = get_path(data, "splits.train.counts") or {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, (int, float))}


def _num_classes(f: RunFeatures) -> int | None:
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


def _head_stage_flat(f: RunFeatures, th: dict) -> str | None:
    """Name of a head-only stage in the history whose val loss flattened, with no later
    stage; None if the history does not show that."""
    if not f.stage or f.val_loss is None:
        return None
    stages = get_path(f.run.recipe, "stages") or []
    head_names = {str(s.get("name", i)) for i, s in enumerate(stages) if s.get("trainable") == "head"}
    head_names |= {str(i) for i, s in enumerate(stages) if s.get("trainable") == "head"}
    last = f.stage[-1]
    if last not in head_names and not ("head" in last.lower() and not stages):
        return None
    idx = [i for i, s in enumerate(f.stage) if s == last]
    v = C.fill_gaps(f.val_loss[idx])
    if v.size < 3:
        return None
    progress = f.progress_epoch(v, th["plateau_tolerance"])
    return last if progress < v.size - 2 else None


@rule("unfreeze_backbone", curve=False)
def unfreeze_backbone(f: RunFeatures, th: dict) -> Finding | None:
    """A head-only stage converged and no stage fine-tunes the backbone after it."""
    stages = get_path(f.run.recipe, "stages") or []
    flat = _head_stage_flat(f, th)
    last_is_head = bool(stages) and stages[-1].get("trainable") == "head"
    if not last_is_head and flat is None:
        return None
    lr = get_path(f.run.recipe, "optimizer.learning_rate")
    head_lr = get_path(stages[-1], "optimizer.learning_rate", lr) if stages else lr
    if isinstance(head_lr, (int, float)):
        new_stage = {"name": "finetune", "trainable": "all",
                     "optimizer": {"learning_rate": float(f"{head_lr * 0.1:.3g}")}}
        patch: dict[str, Any] = {"stages": [*stages, new_stage]}
    else:
        patch = {"stages": "+ {trainable = 'all', optimizer.learning_rate = ×0.1}"}
    where = f"stage '{flat}'" if flat else "the last stage"
    return Finding(
        "unfreeze_backbone", "warning", 0.8 if flat else 0.6,
        f"{where} trains only the head and nothing fine-tunes the backbone after it",
        {"stage": flat or (stages[-1].get("name") if stages else None)},
        [Action(patch, "fine-tuning all layers at a 10× lower rate after the head converges "
                "usually gains several points")],
    )


@rule("train_from_scratch_small_data", curve=False)
def train_from_scratch_small_data(f: RunFeatures, th: dict) -> Finding | None:
    """Training from random weights with few images per class."""
    if get_path(f.run.recipe, "model.weights") != "none":
        return None
    counts = _train_counts(f.run.data)
    size = get_path(f.run.data, "splits.train.size")
    classes = _num_classes(f)
    per_class = np.median(list(counts.values())) if counts else (size / classes if size and classes else None)
    if per_class is None or per_class >= th["few_per_class"]:
        return None
    backbone = str(get_path(f.run.recipe, "model.backbone", ""))
    patch: dict[str, Any] = {"model.weights": "imagenet"}
    if "cnn" in backbone:  # built-in CNNs have no pretrained weights
        patch = {"model.backbone": "resnet50", "model.weights": "imagenet"}
    return Finding(
        "train_from_scratch_small_data", "warning", ramp(th["few_per_class"] - per_class, 0, th["few_per_class"] / 2) * 0.4 + 0.6,
        f"training from scratch with about {per_class:.0f} images per class: start from pretrained weights",
        {"images_per_class": float(per_class), "backbone": backbone},
        [Action(patch, "transfer learning from ImageNet needs far fewer images per class")],
    )


@rule("low_resolution", curve=False)
def low_resolution(f: RunFeatures, th: dict) -> Finding | None:
    """Fine-grained task (many classes) or bilinear head at a small input size."""
    size = _image_size(f)
    if size is None:
        return None
    classes = _num_classes(f) or 0
    bilinear = "bilinear" in str(get_path(f.run.recipe, "model.head", ""))
    want = th["bilinear_resolution"] if bilinear else th["min_resolution"]
    if not (bilinear or classes >= th["fine_grained_classes"]) or size >= want:
        return None
    why = "a bilinear head" if bilinear else f"{classes} classes (fine-grained)"
    return Finding(
        "low_resolution", "warning", 0.7,
        f"input size {size} is small for {why}: fine details need about {want} pixels",
        {"image_size": size, "num_classes": classes, "bilinear": bilinear, "wanted": want},
        [Action({"data.image_size": [want, want]}, "higher resolution keeps the small "
                "discriminative parts visible (448 vs 224 was worth ~10 points on CUB)")],
    )
