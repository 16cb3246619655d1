"""`build_model`: input → preprocessing → backbone → head → dropout → classifier.

The parts are named ("preprocess", "backbone", "head", "dropout", "classifier") so that
stages can freeze them by name.
"""

from __future__ import annotations

from kadvisor.errors import ModelError
from kadvisor.registry import HEADS, did_you_mean


def is_pretrained(recipe) -> bool:
    """True when the backbone starts from learned weights rather than random ones."""
    return recipe.model.weights != "none"


def build_model(recipe, num_classes: int, input_shape: tuple[int, int, int]):
    """Builds the (uncompiled) classifier the recipe describes.

    Args:
        recipe: A `kadvisor.recipe.Recipe`.
        num_classes: Size of the softmax output.
        input_shape: (height, width, channels) of the pipeline's images (0–255 floats).

    Returns:
        A functional `keras.Model` named after the recipe.

    Raises:
        ModelError: for a backbone/weights/head/feature-layer problem.
    """
    import keras

    from kadvisor.models.backbones import build_backbone
    from kadvisor.models.preprocess import ImagePreprocessing

    m = recipe.model
    backbone, spec = build_backbone(
        m.backbone, tuple(input_shape), m.weights, m.feature_layer or _default_layer(recipe, spec_of(m.backbone)), m.width
    )
    inputs = keras.Input(tuple(input_shape), name="image")
    x = ImagePreprocessing(spec.preprocess, name="preprocess")(inputs)
    x = backbone(x)
    _check_stage_layers(recipe, backbone)
    try:
        head = HEADS.get(m.head)(recipe)
    except KeyError as e:
        raise ModelError(f"model.head: {e.args[0]}") from None
    x = head(x)
    if m.dropout > 0:
        x = keras.layers.Dropout(m.dropout, name="dropout")(x)
    # float32 output keeps the softmax and the loss stable under mixed precision.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier")(x)
    model = keras.Model(inputs, outputs, name=recipe.name)
    # A pretrained backbone keeps its BatchNormalization in inference mode even while
    # fine-tuning: updating ImageNet statistics from small batches ruins them. Calling it
    # with `training=False` is not enough: Keras 3.15 replaces an explicit `training`
    # inside a functional graph by the outer call's (True in fit). A BN layer with
    # trainable=False always normalises with its moving statistics, so the stages
    # (`kadvisor.training.stages.set_trainable`) keep those layers frozen.
    model.batchnorm_frozen = is_pretrained(recipe)
    return model


def _check_stage_layers(recipe, backbone) -> None:
    """Refuses a stage ``trainable = "from:LAYER"`` that names no layer of the backbone.

    Checked as the model is built, before a run directory exists: found only when its
    stage starts, the typo would fail the run after every earlier stage had trained.
    """
    names = [layer.name for layer in backbone.layers]
    for i, stage in enumerate(recipe.stages):
        layer = stage.trainable.removeprefix("from:")
        if stage.trainable.startswith("from:") and layer not in names:
            raise ModelError(
                f"stages[{i}].trainable: backbone '{recipe.model.backbone}' has no layer '{layer}'"
                f"{did_you_mean(layer, names)}; expected 'from:' and one of its layer names"
            )


def spec_of(name: str):
    """Returns the registered `BackboneSpec` of a backbone name."""
    from kadvisor.registry import BACKBONES

    try:
        return BACKBONES.get(name)
    except KeyError as e:
        raise ModelError(f"model.backbone: {e.args[0]}") from None


def _default_layer(recipe, spec) -> str:
    # Bilinear heads pool the last convolution (before its pooling), e.g. VGG16 conv5_3.
    return spec.default_feature_layer if recipe.model.head != "gap" else ""
