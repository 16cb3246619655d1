"""`ImagePreprocessing`: each keras.applications backbone's `preprocess_input` as a layer.

The pipeline feeds float pixels in [0, 255]; putting the backbone's own normalisation
inside the model (instead of in tf.data) keeps a saved `model.keras` self-contained and
loadable with ``safe_mode=True`` — a Lambda around `preprocess_input` would not be.
"""

from __future__ import annotations

import keras
from keras import ops

# keras.applications.imagenet_utils constants for the "caffe" and "torch" modes.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
MODES = ("caffe", "tf", "torch", "scale", "none")


@keras.saving.register_keras_serializable(package="kadvisor")
class ImagePreprocessing(keras.layers.Layer):
    """Normalises [0, 255] RGB pixels the way a backbone's `preprocess_input` does.

    Args:
        mode: "caffe" (RGB→BGR, subtract the ImageNet mean; VGG16, ResNet50), "tf"
            (scale to [-1, 1]; ResNet50V2, MobileNetV2, Xception, InceptionV3),
            "torch" (scale to [0, 1], ImageNet mean/std; DenseNet), "scale" (to [0, 1];
            built-in CNNs) or "none" (the backbone normalises inside itself;
            EfficientNet, EfficientNetV2, ConvNeXt, MobileNetV3).
        **kwargs: Standard layer arguments.
    """

    def __init__(self, mode: str = "none", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1) - ops.convert_to_tensor(_CAFFE_MEAN_BGR, x.dtype)
        elif self.mode == "tf":
            x = x / 127.5 - 1.0
        elif self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, x.dtype)
            std = ops.convert_to_tensor(_TORCH_STD, x.dtype)
            x = (x / 255.0 - mean) / std
        elif self.mode == "scale":
            x = x / 255.0
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
