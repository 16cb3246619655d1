"""Shared test setup: quiet TensorFlow and two logical CPU devices.

The CPU is split into two logical devices before TensorFlow initialises (it cannot be
done later), so MirroredStrategy can be tested on a machine without GPUs. Everything
else runs on the first device as usual.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_HOME", os.path.join(os.path.dirname(__file__), ".keras-home"))

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
