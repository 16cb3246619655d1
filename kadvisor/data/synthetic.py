"""Synthetic textures that only second-order (bilinear) pooling can tell apart.

Each image is a grid of small tiles. A tile shows one pattern from a shared set in
channel 0 ("group A") and one in channel 1 ("group B"); further channels show
independent distractor patterns. In every class the group-A pattern is uniform over
the set, and within class k the group-B pattern is a fixed function of it,
``b = perm_k(a)``, a permutation that differs between classes. So every channel, on its
own, has the same distribution in every class (same per-channel means, variances,
histograms and marginal distribution of tile patterns); only which A pattern
CO-OCCURS with which B pattern at the same location depends on the class.

First-order pooling (global average of conv features) sees the per-location marginals
and must learn feature conjunctions to separate the classes; bilinear pooling of the
same features reads the cross-channel co-occurrence directly from the pooled outer
product.
"""

import numpy as np


def make_cooccurrence_textures(
    num_classes=4,
    per_class=256,
    size=32,
    channels=3,
    seed=0,
    tile=4,
    num_patterns=8,
    amplitude=60.0,
    noise=20.0,
    orthogonal=True,
    random_signs=False,
):
    """Generates co-occurrence textures with class-independent marginals.

    Args:
        num_classes: Number of classes, 2 to ``num_patterns``; class k pairs group-A
            pattern a with group-B pattern ``perm((a + k) % num_patterns)``, so no two
            classes share a pair.
        per_class: Images per class (positive).
        size: Height and width in pixels; a multiple of ``tile``.
        channels: Channels, at least 2 (A and B); channels from 2 on are distractors.
        seed: Seeds the pattern set, the pairing and the images; the same arguments
            always give the same arrays.
        tile: Tile side in pixels.
        num_patterns: Size of the shared pattern set.
        amplitude: Pixel amplitude of a pattern around mid-grey 128.
        noise: Standard deviation of the added Gaussian pixel noise.
        orthogonal: Draw the patterns from the Walsh-Hadamard basis (zero-mean,
            mutually orthogonal, equal energy); False draws random balanced +-1 tiles.
        random_signs: Flip each tile's pattern by a random sign, so that only the
            co-occurrence of the two channels' patterns up to sign is informative.

    Returns:
        A tuple ``(images, labels, class_names)``: uint8 ``(N, size, size, channels)``,
        int64 ``(N,)`` with N = ``num_classes * per_class`` sorted by class, and a list
        of ``num_classes`` names.

    Raises:
        ValueError: When an argument is outside the range stated above.
    """
    _check(num_classes, per_class, size, channels, tile, num_patterns)
    rng = np.random.default_rng(seed)
    patterns = _patterns(tile, num_patterns, rng, orthogonal)
    pairing = _pairings(num_classes, num_patterns, rng)

    n = num_classes * per_class
    grid = size // tile
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    index = np.empty((n, grid, grid, channels), dtype=np.int64)
    index[..., 0] = rng.integers(0, num_patterns, size=(n, grid, grid))
    index[..., 1] = pairing[labels[:, None, None], index[..., 0]]
    index[..., 2:] = rng.integers(0, num_patterns, size=(n, grid, grid, channels - 2))

    tiles = patterns[index].reshape(n, grid, grid, channels, tile, tile)
    if random_signs:
        tiles *= rng.choice([-1.0, 1.0], size=(n, grid, grid, channels, 1, 1))
    signal = tiles.transpose(0, 1, 4, 2, 5, 3).reshape(n, size, size, channels)
    # A random cyclic shift per image, so tile borders carry no fixed position.
    shifts = rng.integers(0, tile, size=(n, 2))
    rows = (np.arange(size)[None, :] + shifts[:, :1]) % size
    cols = (np.arange(size)[None, :] + shifts[:, 1:]) % size
    signal = signal[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]

    pixels = 128.0 + amplitude * signal + rng.normal(0.0, noise, size=signal.shape)
    images = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    class_names = [f"pairing_{k}" for k in range(num_classes)]
    return images, labels, class_names


def _check(num_classes, per_class, size, channels, tile, num_patterns):
    if not 2 <= num_patterns:
        raise ValueError(f"`num_patterns` must be at least 2. Received: {num_patterns}")
    if not 2 <= num_classes <= num_patterns:
        raise ValueError(
            f"`num_classes` must be between 2 and num_patterns={num_patterns} "
            f"(one distinct pairing per class). Received: num_classes={num_classes}"
        )
    if per_class < 1:
        raise ValueError(f"`per_class` must be positive. Received: per_class={per_class}")
    if channels < 2:
        raise ValueError(
            "`channels` must be at least 2 (one per pattern group). "
            f"Received: channels={channels}"
        )
    if tile < 2 or size < tile or size % tile:
        raise ValueError(
            f"`size` must be a positive multiple of `tile` (tile >= 2). "
            f"Received: size={size}, tile={tile}"
        )


def _patterns(tile, num_patterns, rng, orthogonal):
    if orthogonal:
        # Walsh-Hadamard patterns without the constant one: zero-mean, equal energy and
        # mutually orthogonal, so no pairing changes the pixel-level cross-channel
        # correlation -- only where the patterns co-occur does.
        h = np.array([[1.0]])
        while h.shape[0] < tile * tile:
            h = np.block([[h, h], [h, -h]])
        rows = 1 + rng.permutation(tile * tile - 1)[:num_patterns]
        return h[rows]
    half = tile * tile // 2
    base = np.array([1.0] * half + [-1.0] * (tile * tile - half))
    return np.stack([rng.permutation(base) for _ in range(num_patterns)])


def _pairings(num_classes, num_patterns, rng):
    # Class k pairs pattern a with perm[(a + k + 1) % K]: perm relabels patterns, the
    # shift k + 1 makes every class's pairing different from every other's.
    perm = rng.permutation(num_patterns)
    a = np.arange(num_patterns)
    return np.stack([perm[(perm.argsort()[a] + k + 1) % num_patterns]
                     for k in range(num_classes)])
