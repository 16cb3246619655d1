"""`kadvisor init`: a commented starter recipe for a folder of class sub-folders.

The recipe is built with tomlkit rather than by formatting a string, so any folder name
(quotes, backslashes, non-ASCII) is written as valid TOML. Images are counted the way
``fit`` will read them (`kadvisor.data.sources`: PIL verifies each file), so the counts
and warnings match what training gets.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import tomlkit

from kadvisor.data.sources import image_files, not_a_folder, opens
from kadvisor.errors import InputError


def _table(*rows: tuple) -> tomlkit.items.Table:
    """A table of (key, value, comment) rows; a key may be a list (a dotted key)."""
    table = tomlkit.table()
    for key, value, comment in rows:
        item = tomlkit.item(value)
        if comment:
            item.comment(comment)
        table.add(tomlkit.key(key) if isinstance(key, list) else key, item)
    return table


def _count(root: Path) -> tuple[dict[str, int], list[str]]:
    """Readable images per class sub-folder, and the files PIL cannot open."""
    counts, unreadable = {}, []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith("."):
            files = image_files(d)
            ok = [opens(f) for f in files]
            unreadable += [str(f) for f, good in zip(files, ok) if not good]
            counts[d.name] = sum(ok)
    return {k: v for k, v in counts.items() if v}, unreadable


def _run_name(root: Path) -> str:
    # The recipe's name becomes a folder name: no leading dot (`init .`), no empty name.
    name = root.resolve().name.lstrip(".")
    return "".join("_" if c in "/\\" else c for c in name) or "images"


def starter_recipe(folder: str) -> tuple[str, str]:
    """Returns (recipe text, one-line summary of the folder).

    Unreadable image files and classes with a single image are reported as warnings.

    Raises:
        InputError: when the folder is missing or has no class sub-folders with images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{folder} {not_a_folder(root)}; expected a folder with one sub-folder of images per class")
    counts, unreadable = _count(root)
    if len(counts) < 2:
        raise InputError(f"{folder}: expected at least 2 class sub-folders with readable images, "
                         f"found {len(counts)}")
    if unreadable:
        warnings.warn(f"{len(unreadable)} image file(s) cannot be read and will be skipped by fit: "
                      f"{', '.join(unreadable[:5])}{' ...' if len(unreadable) > 5 else ''}", UserWarning, stacklevel=2)
    single = [name for name, n in counts.items() if n == 1]
    if single:
        warnings.warn(f"class(es) {', '.join(repr(n) for n in single)} have one image: it cannot be both "
                      f"trained on and held out; add images or leave them out with data.classes",
                      UserWarning, stacklevel=2)
    total = sum(counts.values())
    summary = f"{len(counts)} classes, {total} images ({min(counts.values())}–{max(counts.values())} per class)"
    return tomlkit.dumps(_document(root, summary, total // len(counts))), summary


def _document(root: Path, summary: str, per_class: int) -> tomlkit.TOMLDocument:
    doc = tomlkit.document()
    for line in (f"kadvisor recipe for {root.as_posix()}", summary,
                 "Train: kadvisor fit {this file}    Then: kadvisor diagnose runs/<run directory>",
                 "Every field and its default: kadvisor recipe show {this file}"):
        doc.add(tomlkit.comment(line))
    doc.add("name", _run_name(root))
    doc.add("seed", 42)
    doc.add(tomlkit.nl())
    data = _table(
        ("source", f"folder:{root.as_posix()}", "one sub-folder of images per class"),
        ("image_size", [224, 224], "model input; fine-grained tasks gain from 448"),
        ("val_fraction", 0.1, "stratified hold-outs"),
        ("test_fraction", 0.2, None),
    )
    data.add("augment", _table(
        ("flip", "horizontal", '"none" for digits, text, or orientation-dependent images'),
        ("zoom", 0.1, None),
        ("rotation", 0.03, None),
    ))
    doc.add("data", data)
    model = tomlkit.table()
    model.add(tomlkit.comment(f"A pretrained backbone transfers well from few images: {per_class} per class here."))
    for key, value, comment in (
        ("backbone", "efficientnetb0", "kadvisor recipe show lists the choices"),
        ("weights", "imagenet", 'needs internet once; "none" trains from scratch'),
        ("head", "gap", '"compact_bilinear" for fine-grained classes'),
        ("dropout", 0.2, None),
    ):
        model.add(key, tomlkit.item(value).comment(comment) if comment else value)
    doc.add("model", model)
    doc.add("optimizer", _table(("name", "adam", None), ("learning_rate", 1e-3, None)))
    doc.add("train", _table(("batch_size", 32, None),
                            ("early_stopping", 5, "stop after 5 epochs without val_loss improvement")))
    doc.add(tomlkit.nl())
    doc.add(tomlkit.comment("Stage 1 trains the new head on the frozen backbone; stage 2 fine-tunes everything at"))
    doc.add(tomlkit.comment("a learning rate ten times lower, so the pretrained features are adjusted, not erased."))
    stages = tomlkit.aot()
    stages.append(_table(("name", "head", None), ("trainable", "head", None), (["train", "epochs"], 5, None)))
    stages.append(_table(("name", "finetune", None), ("trainable", "all", None), (["train", "epochs"], 15, None),
                         (["optimizer", "learning_rate"], 1e-4, None)))
    doc.add("stages", stages)
    return doc
