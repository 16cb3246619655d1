"""Staged transfer learning: which part of the model trains in each stage.

``trainable = "head"`` freezes the backbone (the new head and classifier learn on fixed
features), ``"all"`` unfreezes everything, ``"from:LAYER"`` unfreezes the backbone from
that layer on. A recipe without ``[[stages]]`` is one stage that trains everything.
"""

from __future__ import annotations

from kadvisor.errors import ModelError
from kadvisor.recipe.schema import Stage
from kadvisor.registry import did_you_mean


def stages_of(recipe) -> list[Stage]:
    """Returns the recipe's stages, or one implicit stage training everything."""
    return list(recipe.stages) or [Stage(name="train", trainable="all", overrides={})]


def set_trainable(model, trainable: str) -> None:
    """Freezes/unfreezes the model's parts for a stage.

    The BatchNormalization layers of a pretrained backbone (``model.batchnorm_frozen``,
    set by `build_model`) stay frozen in every stage: a frozen BN layer runs in
    inference mode, so its moving statistics never change (its scale and offset are
    not fine-tuned either).

    Args:
        model: A model from `kadvisor.models.build_model` (has a "backbone" layer).
        trainable: "head", "all" or "from:LAYER_NAME".

    Raises:
        ModelError: when the named layer is not in the backbone.
    """
    model.trainable = True
    backbone = model.get_layer("backbone")
    if trainable == "all":
        backbone.trainable = True
    elif trainable == "head":
        backbone.trainable = False
    else:
        name = trainable.removeprefix("from:")
        names = [layer.name for layer in backbone.layers]
        if name not in names:
            raise ModelError(
                f"stages trainable 'from:{name}': the backbone has no layer '{name}'"
                f"{did_you_mean(name, names)}"
            )
        start = names.index(name)
        for i, layer in enumerate(backbone.layers):
            layer.trainable = i >= start
    if getattr(model, "batchnorm_frozen", False):
        import keras

        for layer in _all_layers(backbone):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def _all_layers(layer):
    # keras.applications backbones are flat, but a backbone may nest models.
    for inner in getattr(layer, "layers", []):
        yield inner
        yield from _all_layers(inner)
