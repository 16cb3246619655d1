"""env.json: what a run ran on, so results can be compared and reproduced."""

from __future__ import annotations

import datetime as _dt
import platform
import socket
import sys


def describe_environment(recipe, strategy) -> dict:
    """Versions, devices, strategy, precision, seed and the command line."""
    import keras
    import numpy
    import sklearn
    import tensorflow as tf

    devices = [{"name": d.name, "type": d.device_type} for d in tf.config.list_logical_devices()]
    return {
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": sys.argv,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "kadvisor": __import__("kadvisor").__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "devices": devices,
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "global_batch_size": recipe.train.batch_size,
        "learning_rate": recipe.optimizer.learning_rate,
        "precision": recipe.train.precision,
        "jit_compile": recipe.train.jit_compile,
        "seed": recipe.seed,
    }
