"""Data: sources behind a registry, stratified splits, one ``tf.data`` pipeline.

    from kadvisor.data import prepare_data
    bundle = prepare_data(recipe)            # bundle.train / .validation / .test / .info
    model.fit(bundle.train, validation_data=bundle.validation,
              class_weight=bundle.class_weight)

Importing this package does not import TensorFlow; the functions import it when called.
"""

from kadvisor.data.bundle import DataBundle, load_split_arrays, prepare_data
from kadvisor.data.info import DataInfo

__all__ = ["DataBundle", "DataInfo", "load_split_arrays", "prepare_data"]
