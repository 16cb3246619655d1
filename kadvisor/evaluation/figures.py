"""Evaluation figures: the confusion matrix and a grid of the most confident mistakes.

Both are drawn with matplotlib's Agg backend (the confusion matrix by scikit-learn's
`ConfusionMatrixDisplay`) into memory and written atomically.
"""

from __future__ import annotations

import math
import os

import numpy as np

from kadvisor.plotting import save_figure

# Beyond these class counts the cell values, then the tick labels, stop being legible.
_MAX_CLASSES_WITH_VALUES = 20
_MAX_CLASSES_WITH_NAMES = 60


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(matrix: np.ndarray, class_names: list[str], path: str | os.PathLike,
                  title: str = "") -> None:
    """Draws a confusion matrix, each row normalised to the true class's recall.

    Row-normalised colours stay readable under class imbalance (a rare class's row is
    as bright as a common one's); the cells show those fractions for up to 20 classes.

    Args:
        matrix: Counts, rows = true class, columns = predicted class.
        class_names: Name of each class.
        path: PNG file to write.
        title: Figure title.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    k = len(class_names)
    with np.errstate(invalid="ignore", divide="ignore"):  # a class absent from the split
        normalised = np.nan_to_num(matrix / matrix.sum(axis=1, keepdims=True))
    names = class_names if k <= _MAX_CLASSES_WITH_NAMES else [""] * k
    size = min(4 + 0.35 * k, 30)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    display = ConfusionMatrixDisplay(normalised, display_labels=names)
    display.plot(ax=ax, cmap="Blues", include_values=k <= _MAX_CLASSES_WITH_VALUES,
                 values_format=".2f", xticks_rotation="vertical", colorbar=True)
    display.im_.set_clim(0, 1)
    ax.set_title(title or "confusion matrix (rows: fraction of each true class)")
    fig.tight_layout()
    save_figure(fig, path)


def mistakes_png(images: np.ndarray, captions: list[str], path: str | os.PathLike,
                 title: str = "") -> None:
    """Draws images in a grid with a caption each (or a note that there are none).

    Args:
        images: ``(N, H, W, C)`` floats in [0, 255], C = 1 or 3.
        captions: One short caption per image.
        path: PNG file to write.
        title: Figure title.
    """
    plt = _pyplot()
    n = len(images)
    cols = max(1, min(5, n))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    if n == 0:
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center", fontsize=14)
    for ax, image, caption in zip(axes.ravel(), images, captions):
        image = np.clip(image, 0, 255) / 255.0
        if image.shape[-1] == 1:
            ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(image)
        ax.set_title(caption, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
