"""Distribution strategy, replica scaling and numeric precision from the recipe.

Everything here is TensorFlow's own engine (`tf.distribute`) configured from
``[distribute]``; nothing is home-made. ``strategy = "multi_worker"`` joins the cluster
(`kadvisor.training.cluster`); where Keras 3's ``model.fit`` cannot train (several
workers, or gradient accumulation with several replicas) the stage loop uses
`kadvisor.training.custom_step` instead.

Replica scaling: with N replicas and ``distribute.scale_batch`` (the default) every
replica keeps ``train.batch_size`` examples, so the global batch is N times larger, and
the learning rate follows ``distribute.lr_scaling``: ×N ("linear", Goyal et al. 2017,
for SGD), ×√N ("sqrt", gentler, common for Adam), or unchanged ("none").
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math

from kadvisor.errors import KadvisorError


def build_strategy(recipe):
    """Returns the `tf.distribute.Strategy` for ``[distribute]``.

    Raises:
        KadvisorError: for a strategy this machine cannot provide (no TPU, no such
            device, unreachable workers).
    """
    import tensorflow as tf

    d = recipe.distribute
    kind = d.strategy
    if kind == "multi_worker":
        from kadvisor.training.cluster import join

        return join(d)  # joined already by `kadvisor fit`, with its --worker-index
    if kind == "auto":
        kind = _auto_kind()
    if kind == "tpu":
        strategy = _tpu_strategy(d.tpu)
    elif kind == "mirrored":
        strategy = _mirrored(tuple(_mirrored_devices(d.devices) or ()))
    elif kind == "one_device":
        strategy = tf.distribute.OneDeviceStrategy(_one_device(d.device))
    else:
        strategy = tf.distribute.get_strategy()
    return strategy


def _auto_kind() -> str:
    import tensorflow as tf

    if _tpu_hinted() and _find_tpu() is not None:
        return "tpu"
    return "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"


def _tpu_hinted() -> bool:
    """Cheap signs of a TPU (Cloud TPU VM devices, Colab/GKE variables).

    Probing with a cluster resolver elsewhere can wait on a cloud metadata server.
    """
    import os

    return any(os.environ.get(v) for v in ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE")) or \
        os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0")


def _find_tpu(address: str = ""):
    """A connected TPU cluster resolver, or None when no TPU is reachable."""
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except (ValueError, RuntimeError, tf.errors.OpError):
        return None


def _tpu_strategy(address: str):
    import tensorflow as tf

    resolver = _find_tpu(address)
    if resolver is None:
        where = f"at {address!r}" if address else "on this machine"
        raise KadvisorError(f"distribute.strategy 'tpu': no TPU found {where}; "
                            f"expected a reachable TPU (distribute.tpu = its address)")
    return tf.distribute.TPUStrategy(resolver)


@functools.lru_cache(maxsize=None)
def _mirrored(devices: tuple[str, ...]):
    """One MirroredStrategy per device set and process.

    A second MirroredStrategy over the same devices in one process reuses collective
    instance keys of the first, and TensorFlow then aborts with "Shape mismatch in the
    collective instance" (seen with the tuner and in tests, which build many models).
    """
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(list(devices) or None)


def _mirrored_devices(devices: list[str]) -> list[str] | None:
    if not devices:
        return None  # TensorFlow's default: every GPU, else the CPU
    for device in devices:
        _check_device(device, "distribute.devices")
    return list(devices)


def _one_device(device: str) -> str:
    import tensorflow as tf

    if not device:
        return "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
    _check_device(device, "distribute.device")
    return device


def _check_device(device: str, field: str) -> None:
    import tensorflow as tf

    names = [d.name for d in tf.config.list_logical_devices()]
    short = {n.split("device:")[-1].lower(): n for n in names}
    if device.lower().lstrip("/").replace("device:", "") not in short and device not in names:
        raise KadvisorError(
            f"{field}: no device {device!r} on this machine; expected one of "
            f"{', '.join('/' + k for k in short)}"
        )


def scale_for_replicas(recipe, replicas: int):
    """Returns a copy of the recipe with batch size and learning rates scaled for replicas.

    Each stage's own ``optimizer.learning_rate`` / ``train.batch_size`` overrides are
    scaled the same way. One replica (or ``scale_batch = false``) changes nothing.
    """
    d = recipe.distribute
    if replicas <= 1 or not d.scale_batch:
        return recipe
    factor = {"linear": replicas, "sqrt": math.sqrt(replicas), "none": 1}[d.lr_scaling]
    scaled = copy.deepcopy(recipe)
    scaled.train.batch_size *= replicas
    scaled.optimizer.learning_rate *= factor
    for stage in scaled.stages:
        if "train.batch_size" in stage.overrides:
            stage.overrides["train.batch_size"] *= replicas
        if "optimizer.learning_rate" in stage.overrides:
            stage.overrides["optimizer.learning_rate"] *= factor
    return scaled


def jit_compile_of(recipe):
    """``train.jit_compile`` as Keras's ``compile(jit_compile=...)`` value."""
    return {"auto": "auto", "on": True, "off": False}[recipe.train.jit_compile]


@contextlib.contextmanager
def precision(policy: str):
    """Sets Keras's global dtype policy for the block, then restores the previous one."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
