"""`kadvisor init`: a commented starter recipe for a folder of class sub-folders."""

from __future__ import annotations

from pathlib import Path

from kadvisor.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}

_TEMPLATE = '''# kadvisor recipe for {folder}
# {summary}
# Train: kadvisor fit {{this file}}    Then: kadvisor diagnose runs/<run directory>
# Every field and its default: kadvisor recipe show {{this file}}
name = "{name}"
seed = 42

[data]
source = "folder:{folder}"   # one sub-folder of images per class
image_size = [224, 224]       # model input; fine-grained tasks gain from 448
val_fraction = 0.1            # stratified hold-outs
test_fraction = 0.2

[data.augment]
flip = "horizontal"           # "none" for digits, text, or orientation-dependent images
zoom = 0.1
rotation = 0.03

[model]
# A pretrained backbone transfers well from few images: {per_class} per class here.
backbone = "efficientnetb0"   # kadvisor recipe show lists the choices
weights = "imagenet"          # needs internet once; "none" trains from scratch
head = "gap"                  # "compact_bilinear" for fine-grained classes
dropout = 0.2

[optimizer]
name = "adam"
learning_rate = 1e-3

[train]
batch_size = 32
early_stopping = 5            # stop after 5 epochs without val_loss improvement

# Stage 1 trains the new head on the frozen backbone; stage 2 fine-tunes everything at
# a learning rate ten times lower, so the pretrained features are adjusted, not erased.
[[stages]]
name = "head"
trainable = "head"
train.epochs = 5

[[stages]]
name = "finetune"
trainable = "all"
train.epochs = 15
optimizer.learning_rate = 1e-4
'''


def starter_recipe(folder: str) -> tuple[str, str]:
    """Returns (recipe text, one-line summary of the folder).

    Raises:
        InputError: when the folder is missing or has no class sub-folders with images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{folder}: not a folder (expected one sub-folder of images per class)")
    counts = {
        d.name: sum(1 for f in d.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    counts = {k: v for k, v in counts.items() if v}
    if len(counts) < 2:
        raise InputError(f"{folder}: expected at least 2 class sub-folders with images, found {len(counts)}")
    total = sum(counts.values())
    summary = f"{len(counts)} classes, {total} images ({min(counts.values())}–{max(counts.values())} per class)"
    text = _TEMPLATE.format(
        folder=root.as_posix(), name=root.name or "images", summary=summary,
        per_class=total // len(counts),
    )
    return text, summary
