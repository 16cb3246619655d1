"""Bilinear pooling and its normalisation layers (Lin et al., ICCV 2015).

A bilinear head pools the outer product of conv features over spatial locations,
then applies a signed square root and L2 normalisation before a linear classifier:

    x (B, H, W, C) -> BilinearPooling -> (B, C*C) -> SignedSqrt -> L2Normalize -> Dense

The compact (Tensor Sketch / Random Maclaurin) variant lives in `compact_bilinear.py`.

Mixed precision: pooled second-order statistics are sums of products over hundreds of
locations and overflow float16 (max 65504) on ordinary VGG features, and the FFT of the
compact variant needs float32. So every layer here defaults to the ``"float32"`` dtype
policy even when the global policy is ``mixed_float16``: Keras casts the float16 backbone
output up on entry, and the classifier after the head casts the unit-norm vector back down.
Pass ``dtype=...`` explicitly to override.
"""

import keras
import tensorflow as tf
from keras import ops

_REDUCTIONS = ("sum", "mean")


def float32_by_default(kwargs):
    """Returns layer kwargs whose dtype policy is float32 unless one was given.

    Args:
        kwargs: The keyword arguments a layer received (not modified).

    Returns:
        A copy of ``kwargs`` with ``dtype="float32"`` when ``dtype`` was absent or None.
    """
    kwargs = dict(kwargs)
    if kwargs.get("dtype") is None:
        kwargs["dtype"] = "float32"
    return kwargs


def check_reduction(reduction):
    """Validates a spatial reduction name and returns it.

    Args:
        reduction: ``"sum"`` or ``"mean"``.

    Returns:
        The validated name.

    Raises:
        ValueError: When ``reduction`` is not one of the two names.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"`reduction` must be one of {_REDUCTIONS}. Received: reduction={reduction!r}"
        )
    return reduction


def split_pair_shapes(input_shape, layer_name):
    """Normalises the input shape of a one- or two-input bilinear layer.

    Args:
        input_shape: One shape ``(B, ..., C)`` or a list/tuple of two such shapes.
        layer_name: Used in error messages.

    Returns:
        A tuple ``(x_shape, y_shape, paired)``; ``y_shape`` equals ``x_shape`` and
        ``paired`` is False when a single input was given.

    Raises:
        ValueError: When the shapes have rank < 3, unknown channels, more than two
            inputs, or spatial dimensions that differ between the two inputs.
    """
    paired = (
        isinstance(input_shape, (list, tuple))
        and len(input_shape) > 0
        and all(isinstance(s, (list, tuple)) for s in input_shape)
    )
    if paired:
        if len(input_shape) != 2:
            raise ValueError(
                f"{layer_name} expects one feature map or a list of two. "
                f"Received {len(input_shape)} inputs with shapes {input_shape}."
            )
        x_shape, y_shape = tuple(input_shape[0]), tuple(input_shape[1])
    else:
        x_shape = y_shape = tuple(input_shape)
    for shape in (x_shape, y_shape):
        if len(shape) < 3:
            raise ValueError(
                f"{layer_name} expects feature maps of shape (batch, ..., channels) "
                f"with at least one spatial axis, e.g. (B, H, W, C). "
                f"Received shape {shape}."
            )
        if shape[-1] is None:
            raise ValueError(
                f"{layer_name} needs a known channel dimension. Received shape {shape}."
            )
    x_space, y_space = x_shape[1:-1], y_shape[1:-1]
    if len(x_space) != len(y_space) or any(
        a is not None and b is not None and a != b for a, b in zip(x_space, y_space)
    ):
        raise ValueError(
            f"{layer_name} pools two feature maps location by location, so their "
            f"spatial shapes must match. Received {x_shape} and {y_shape}."
        )
    return x_shape, y_shape, paired


def split_pair(inputs):
    """Returns ``(x, y)`` from a tensor or a list of two, as float32 ``(B, N, C)``.

    Args:
        inputs: A tensor ``(B, ..., C)`` or a list/tuple ``[x, y]`` of two.

    Returns:
        The two tensors cast to float32 and reshaped to ``(B, N, C)``, N being the
        number of locations; ``y`` is ``x`` itself for a single input.
    """
    if isinstance(inputs, (list, tuple)):
        return _to_locations(inputs[0]), _to_locations(inputs[1])
    x = _to_locations(inputs)
    return x, x


def _to_locations(t):
    t = ops.cast(t, "float32")
    return ops.reshape(t, (ops.shape(t)[0], -1, ops.shape(t)[-1]))


@keras.saving.register_keras_serializable(package="kadvisor")
class BilinearPooling(keras.layers.Layer):
    """Full bilinear pooling: sum over locations of the outer product of features.

    For a feature map ``x`` of shape ``(B, H, W, C1)`` and optionally a second map
    ``y`` of shape ``(B, H, W, C2)`` (``y = x`` when one input is given), computes

        z[b] = flatten(sum_{h,w} x[b,h,w,:] outer y[b,h,w,:])   # shape (B, C1*C2)

    (divided by H*W when ``reduction="mean"``). Any number of spatial axes is accepted.

    Args:
        reduction: ``"sum"`` (as in Lin et al. and Gao et al.) or ``"mean"`` (the same
            up to the constant 1/(H*W), which the later L2 normalisation removes but
            which keeps magnitudes independent of the input resolution).
        **kwargs: Base `keras.layers.Layer` arguments; ``dtype`` defaults to float32.

    Returns:
        Called on ``x`` or ``[x, y]``, a float32 tensor of shape ``(B, C1*C2)``.
    """

    def __init__(self, reduction="sum", **kwargs):
        super().__init__(**float32_by_default(kwargs))
        self.reduction = check_reduction(reduction)

    def build(self, input_shape):
        split_pair_shapes(input_shape, type(self).__name__)
        self.built = True

    def call(self, inputs):
        x, y = split_pair(inputs)
        pooled = ops.einsum("bnc,bnd->bcd", x, y)
        if self.reduction == "mean":
            pooled = pooled / ops.cast(ops.shape(x)[1], pooled.dtype)
        out = ops.reshape(pooled, (ops.shape(pooled)[0], -1))
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        x_shape, y_shape, _ = split_pair_shapes(input_shape, type(self).__name__)
        return (x_shape[0], x_shape[-1] * y_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"reduction": self.reduction})
        return config


@keras.saving.register_keras_serializable(package="kadvisor")
class SignedSqrt(keras.layers.Layer):
    """Signed square root ``y = sign(x) * sqrt(|x|)`` with a bounded gradient.

    The exact derivative ``0.5 / sqrt(|x|)`` is infinite at zero, which turns an
    all-zero feature (a dead ReLU map, padding) into NaN gradients. The backward pass
    uses ``0.5 / (sqrt(|x|) + epsilon)`` instead, as the reference compact bilinear
    implementation does; the forward value is exact.

    Args:
        epsilon: Positive constant added to ``sqrt(|x|)`` in the gradient's
            denominator; bounds the gradient by ``0.5 / epsilon``.
        **kwargs: Base `keras.layers.Layer` arguments; ``dtype`` defaults to float32.

    Returns:
        Called on any tensor, a tensor of the same shape.
    """

    def __init__(self, epsilon=0.1, **kwargs):
        super().__init__(**float32_by_default(kwargs))
        if not epsilon > 0:
            raise ValueError(
                f"`epsilon` must be a positive number. Received: epsilon={epsilon!r}"
            )
        self.epsilon = float(epsilon)

    def call(self, inputs):
        epsilon = self.epsilon

        @tf.custom_gradient
        def signed_sqrt(x):
            root = tf.sqrt(tf.abs(x))

            def grad(upstream):
                return upstream * 0.5 / (root + tf.cast(epsilon, root.dtype))

            return tf.sign(x) * root, grad

        return signed_sqrt(tf.convert_to_tensor(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="kadvisor")
class L2Normalize(keras.layers.Layer):
    """L2 normalisation ``x / sqrt(max(sum(x**2), epsilon))`` along one axis.

    `keras.layers.UnitNormalization` is not used because it is not safe here: its
    ``x * min(rsqrt(sum x**2), 1e12)`` runs in the layer's compute dtype, and under
    ``mixed_float16`` ``1e12`` is ``inf`` in float16, so an all-zero vector gives
    ``0 * inf = NaN``; its gradient at zero is also 1e12. Clamping the squared norm
    (as `tf.nn.l2_normalize` does) bounds the gradient at zero by ``1/sqrt(epsilon)``.

    Args:
        axis: The axis to normalise along.
        epsilon: Lower bound on the squared norm; positive.
        **kwargs: Base `keras.layers.Layer` arguments; ``dtype`` defaults to float32.

    Returns:
        Called on any tensor, a tensor of the same shape with unit norm along ``axis``
        (zero where the input is zero).
    """

    def __init__(self, axis=-1, epsilon=1e-12, **kwargs):
        super().__init__(**float32_by_default(kwargs))
        if not isinstance(axis, int):
            raise ValueError(f"`axis` must be an int. Received: axis={axis!r}")
        if not epsilon > 0:
            raise ValueError(
                f"`epsilon` must be a positive number. Received: epsilon={epsilon!r}"
            )
        self.axis = axis
        self.epsilon = float(epsilon)

    def call(self, inputs):
        square_sum = ops.sum(ops.square(inputs), axis=self.axis, keepdims=True)
        return inputs * ops.rsqrt(ops.maximum(square_sum, self.epsilon))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config
