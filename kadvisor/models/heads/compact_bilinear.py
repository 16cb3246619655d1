"""Compact bilinear pooling: Tensor Sketch and Random Maclaurin (Gao et al., CVPR 2016).

Both map a pair of feature vectors x (C1), y (C2) at one location to a d-dimensional
vector phi(x, y) whose inner products estimate those of the full outer products,
E <phi(x, y), phi(x', y')> = <x, x'> <y, y'>, and pool phi over locations. At
d = 8192 this matches full bilinear pooling (C1*C2 = 262,144 for VGG16's 512 channels)
with a classifier 32x smaller.

Tensor Sketch (Pham & Pagh, 2013): phi = CS1(x) (*) CS2(y), the circular convolution
of two count sketches CS(x)[t] = sum_{i: h(i) = t} s(i) x[i], computed as
irfft(rfft(CS1 x) * rfft(CS2 y)). Count sketches are scatters (segment sums over the
channel axis), O(C) per location instead of a dense C x d matmul. Since the FFT is
linear, sum_l irfft(F_l) = irfft(sum_l F_l): the spectra are summed over locations and
ONE inverse FFT is taken per image, not one per location.

The same Tensor Sketch has a second exact route. phi(x, y) is itself a count sketch of
x outer y, with hash (h1(i) + h2(j)) mod d and sign s1(i) s2(j); being linear, its sum
over locations is the count sketch of the pooled C1 x C2 matrix G = sum_l x_l y_l^T.
Computing G is one batched matmul (2 N C1 C2 flops per image, at full BLAS speed) and
scattering its C1*C2 entries costs no FFT at all, against N FFTs of size d for the
route above. Both give the same output up to float rounding; the layer takes the
cheaper one from the static shapes (see `gram_route_is_cheaper`). At VGG16's
28x28x512 features and d = 8192 the Gram route is ~15x faster on CPU and needs
C1*C2 floats per image instead of ~4 N d (benchmarks/bilinear_speed.py).

Random Maclaurin (Kar & Karnick, 2012): phi = (W1 x) * (W2 y) / sqrt(d) with W1, W2
dense d x C matrices of independent +-1 entries.

The random hashes, signs and projections are drawn from ``seed`` at build time and
stored as non-trainable weights, so a saved ``.keras`` model carries them and reloads
with exactly the same sketch, whatever seed or random generator is in effect later.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kadvisor.models.heads.bilinear_layers import (
    check_reduction,
    float32_by_default,
    split_pair,
    split_pair_shapes,
)

METHODS = ("tensor_sketch", "random_maclaurin")


def count_sketch(features, hashes, signs, output_dim):
    """Count sketch of each row: ``out[m, t] = sum_{i: hashes[i] = t} signs[i] * x[m, i]``.

    A scatter over the channel axis (`tf.math.unsorted_segment_sum`), O(M*C) work and
    no dense C x d matrix.

    Args:
        features: Float tensor ``(M, C)``.
        hashes: Int32 tensor ``(C,)`` with values in ``[0, output_dim)``.
        signs: Float tensor ``(C,)`` of +-1, same dtype as ``features``.
        output_dim: The sketch dimension d.

    Returns:
        Float tensor ``(M, output_dim)``.
    """
    # unsorted_segment_sum scatters along the first axis, so channels go first.
    scattered = tf.math.unsorted_segment_sum(
        tf.transpose(features * signs), hashes, num_segments=output_dim
    )
    return tf.transpose(scattered)


def tensor_sketch_pool(x, y, hash_1, sign_1, hash_2, sign_2, output_dim):
    """Sum over locations of the Tensor Sketch of ``x[b, l] outer y[b, l]``.

    Args:
        x: Float32 tensor ``(B, N, C1)``, N locations.
        y: Float32 tensor ``(B, N, C2)``.
        hash_1, sign_1: Count-sketch hash ``(C1,)`` int32 and signs ``(C1,)`` for x.
        hash_2, sign_2: The same for y, ``(C2,)``; drawn independently of the first
            pair (also when ``y`` is ``x``), or the estimate is biased.
        output_dim: The sketch dimension d.

    Returns:
        Float32 tensor ``(B, output_dim)``.
    """
    batch, locations = tf.shape(x)[0], tf.shape(x)[1]
    sketch_x = count_sketch(tf.reshape(x, (-1, x.shape[-1])), hash_1, sign_1, output_dim)
    sketch_y = count_sketch(tf.reshape(y, (-1, y.shape[-1])), hash_2, sign_2, output_dim)
    spectrum = tf.signal.rfft(sketch_x) * tf.signal.rfft(sketch_y)
    spectrum = tf.reshape(spectrum, (batch, locations, output_dim // 2 + 1))
    # FFT linearity: one inverse transform of the summed spectrum per image.
    return tf.signal.irfft(tf.reduce_sum(spectrum, axis=1), fft_length=[output_dim])


def tensor_sketch_pool_gram(x, y, hash_1, sign_1, hash_2, sign_2, output_dim):
    """The same sum as `tensor_sketch_pool`, as a count sketch of the pooled outer product.

    Args:
        x: Float32 tensor ``(B, N, C1)``, N locations.
        y: Float32 tensor ``(B, N, C2)``.
        hash_1, sign_1: Count-sketch hash ``(C1,)`` int32 and signs ``(C1,)`` for x.
        hash_2, sign_2: The same for y, ``(C2,)``.
        output_dim: The sketch dimension d.

    Returns:
        Float32 tensor ``(B, output_dim)``.
    """
    # Signs folded into the features: G[i, j] = s1(i) s2(j) sum_l x_li y_lj.
    gram = tf.einsum("bnc,bnd->bcd", x * sign_1, y * sign_2)
    buckets = tf.reshape((hash_1[:, None] + hash_2[None, :]) % output_dim, (-1,))
    flat = tf.reshape(gram, (tf.shape(gram)[0], -1))
    # unsorted_segment_sum scatters along the first axis: entries first, images second.
    return tf.transpose(tf.math.unsorted_segment_sum(tf.transpose(flat), buckets, output_dim))


def gram_route_is_cheaper(channels_1, channels_2, output_dim):
    """Whether `tensor_sketch_pool_gram` beats the FFT route for these sizes.

    Per location the Gram route costs ~C1*C2 multiply-adds (batched matmul, fast) and the
    FFT route ~d log2(d) complex operations (FFTs, their gradients and two count
    sketches, all memory-bound). Timed on CPU forward+backward, one FFT unit costs about
    30 Gram units: the Gram route won 14x at C=512, d=8192, 1.2x at C=1024, d=8192 and
    3.6x at C=512, d=1024, and lost 1.5x at C=2048, d=8192 and 8x at C=2048, d=1024.

    Args:
        channels_1: C1.
        channels_2: C2.
        output_dim: d.

    Returns:
        True when ``C1 * C2 <= 32 * d * log2(d)``.
    """
    return channels_1 * channels_2 <= 32 * output_dim * max(1.0, math.log2(output_dim))


def random_maclaurin_pool(x, y, projection_1, projection_2):
    """Sum over locations of ``(x[b, l] @ W1) * (y[b, l] @ W2) / sqrt(d)``.

    Args:
        x: Float32 tensor ``(B, N, C1)``.
        y: Float32 tensor ``(B, N, C2)``.
        projection_1: Float32 ``(C1, d)`` matrix of +-1.
        projection_2: Float32 ``(C2, d)`` matrix of +-1, independent of the first.

    Returns:
        Float32 tensor ``(B, d)``.
    """
    output_dim = projection_1.shape[-1]
    features = ops.matmul(x, projection_1) * ops.matmul(y, projection_2)
    return ops.sum(features, axis=1) / math.sqrt(output_dim)


def draw_sketch_parameters(method, seed, channels_1, channels_2, output_dim):
    """Draws the fixed random parameters of a compact bilinear layer.

    Args:
        method: ``"tensor_sketch"`` or ``"random_maclaurin"``.
        seed: Non-negative int; the same arguments always give the same arrays.
        channels_1: Channels C1 of the first input.
        channels_2: Channels C2 of the second input (C1 again for a single input).
        output_dim: The output dimension d.

    Returns:
        A dict of numpy arrays named as the layer's weights: ``hash_1`` ``(C1,)`` and
        ``hash_2`` ``(C2,)`` int32 uniform on ``[0, d)``, ``sign_1``, ``sign_2`` float32
        +-1 for Tensor Sketch; ``projection_1`` ``(C1, d)`` and ``projection_2``
        ``(C2, d)`` float32 +-1 for Random Maclaurin. All entries are independent.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    rng = np.random.default_rng(seed)
    drawn = {}
    for i, channels in ((1, channels_1), (2, channels_2)):
        if method == "tensor_sketch":
            drawn[f"hash_{i}"] = rng.integers(0, output_dim, size=channels).astype("int32")
            drawn[f"sign_{i}"] = rng.choice([-1.0, 1.0], size=channels).astype("float32")
        else:
            drawn[f"projection_{i}"] = rng.choice(
                [-1.0, 1.0], size=(channels, output_dim)
            ).astype("float32")
    return drawn


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _fixed(values):
    """An initializer returning ``values`` (drawn once, from the layer's seed)."""

    def initializer(shape, dtype=None):
        return ops.cast(ops.reshape(values, shape), dtype)

    return initializer


@keras.saving.register_keras_serializable(package="kadvisor")
class CompactBilinearPooling(keras.layers.Layer):
    """Compact bilinear pooling by Tensor Sketch or Random Maclaurin.

    Called on a feature map ``x`` of shape ``(B, H, W, C1)`` or a list ``[x, y]`` with
    ``y`` of shape ``(B, H, W, C2)`` (any number of spatial axes), returns the sum (or
    mean) over locations of a d-dimensional random feature map of ``x outer y`` whose
    inner products are unbiased estimates of those of full bilinear pooling. With one
    input, ``y = x`` but the two sketches are still independent.

    The random parameters are non-trainable weights, created at build from ``seed``
    (Tensor Sketch: ``hash_1``, ``hash_2`` in ``[0, d)`` and ``sign_1``, ``sign_2`` in
    ``{-1, +1}``; Random Maclaurin: ``projection_1`` ``(C1, d)``, ``projection_2``
    ``(C2, d)`` with +-1 entries) and saved with the model.

    Computation is float32 (the FFT needs it): the dtype policy defaults to float32 and
    inputs are cast up, also under a ``mixed_float16`` global policy.

    Args:
        output_dim: The output dimension d, a positive int (8192 in Gao et al.).
        method: ``"tensor_sketch"`` (O(C + d log d) per location by FFT, or
            O(C1 C2) by the Gram route, whichever is cheaper) or
            ``"random_maclaurin"`` (two dense C x d matmuls per location).
        seed: Non-negative int seeding the hashes, signs or projections.
        reduction: ``"sum"`` or ``"mean"`` over locations.
        **kwargs: Base `keras.layers.Layer` arguments; ``dtype`` defaults to float32.

    Returns:
        Called on ``x`` or ``[x, y]``, a float32 tensor of shape ``(B, output_dim)``.
    """

    def __init__(
        self, output_dim, method="tensor_sketch", seed=0, reduction="sum", **kwargs
    ):
        super().__init__(**float32_by_default(kwargs))
        if not _is_int(output_dim) or output_dim <= 0:
            raise ValueError(
                f"`output_dim` must be a positive int. Received: output_dim={output_dim!r}"
            )
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative int. Received: seed={seed!r}")
        self.output_dim = int(output_dim)
        self.method = method
        self.seed = int(seed)
        self.reduction = check_reduction(reduction)

    def build(self, input_shape):
        x_shape, y_shape, _ = split_pair_shapes(input_shape, type(self).__name__)
        c1, c2, d = int(x_shape[-1]), int(y_shape[-1]), self.output_dim
        drawn = draw_sketch_parameters(self.method, self.seed, c1, c2, d)
        for name, values in drawn.items():
            weight = self.add_weight(
                name=name,
                shape=values.shape,
                dtype=str(values.dtype),
                initializer=_fixed(values),
                trainable=False,
            )
            setattr(self, name, weight)
        self.built = True

    def call(self, inputs):
        x, y = split_pair(inputs)
        if self.method == "tensor_sketch":
            route = (
                tensor_sketch_pool_gram
                if gram_route_is_cheaper(x.shape[-1], y.shape[-1], self.output_dim)
                else tensor_sketch_pool
            )
            pooled = route(
                x,
                y,
                ops.convert_to_tensor(self.hash_1),
                ops.convert_to_tensor(self.sign_1),
                ops.convert_to_tensor(self.hash_2),
                ops.convert_to_tensor(self.sign_2),
                self.output_dim,
            )
        else:
            pooled = random_maclaurin_pool(
                x,
                y,
                ops.convert_to_tensor(self.projection_1),
                ops.convert_to_tensor(self.projection_2),
            )
        if self.reduction == "mean":
            pooled = pooled / ops.cast(ops.shape(x)[1], pooled.dtype)
        return ops.cast(pooled, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        x_shape, _, _ = split_pair_shapes(input_shape, type(self).__name__)
        return (x_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "method": self.method,
                "seed": self.seed,
                "reduction": self.reduction,
            }
        )
        return config
