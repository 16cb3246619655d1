"""Distribution strategy and numeric precision from ``[distribute]``."""

from __future__ import annotations

import contextlib

import tensorflow as tf
import keras

from kadvisor.errors import KadvisorError


def build_strategy(recipe) -> tf.distribute.Strategy:
    """Returns the `tf.distribute.Strategy` for ``distribute.strategy``.

    "auto" uses every visible GPU (MirroredStrategy when there are several), else the
    default strategy on one device.
    """
    kind = recipe.distribute.strategy
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "auto":
        kind = "mirrored" if len(gpus) > 1 else "default"
    if kind == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if kind == "gpu":
        if not gpus:
            raise KadvisorError("distribute.strategy is 'gpu' but TensorFlow sees no GPU")
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=recipe.distribute.tpu or None)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as e:
            raise KadvisorError(f"distribute.strategy 'tpu': no TPU found ({str(e).splitlines()[0]})") from None
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


@contextlib.contextmanager
def precision(policy: str):
    """Sets Keras's global dtype policy for the block, then restores the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
