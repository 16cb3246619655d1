"""Heads behind the registry: how backbone feature maps become one vector per image.

Each head is a function ``(recipe) -> keras.layers.Layer`` that returns a layer (often a
small Sequential) named "head". Registration does not import TensorFlow. The functions
are named ``*_head`` so they do not shadow the submodules of the same name.
"""

from __future__ import annotations

from kadvisor.registry import HEADS


@HEADS.register("gap")
def gap_head(recipe):
    """First-order pooling: the mean of each channel over locations."""
    import keras

    return keras.layers.GlobalAveragePooling2D(name="head")


def _normalised(recipe, pooling):
    import keras

    from kadvisor.models.heads.bilinear_layers import L2Normalize, SignedSqrt

    layers = [pooling]
    if recipe.model.signed_sqrt:
        layers.append(SignedSqrt(name="signed_sqrt"))
    if recipe.model.l2_normalize:
        layers.append(L2Normalize(name="l2_normalize"))
    return keras.Sequential(layers, name="head")


@HEADS.register("bilinear")
def bilinear_head(recipe):
    """Full bilinear pooling (C² outputs), signed square root and L2 normalisation."""
    from kadvisor.models.heads.bilinear_layers import BilinearPooling

    return _normalised(recipe, BilinearPooling(name="bilinear_pooling"))


@HEADS.register("compact_bilinear")
def compact_bilinear_head(recipe):
    """Compact bilinear pooling (Tensor Sketch or Random Maclaurin) to model.pooling_dim."""
    from kadvisor.models.heads.compact_bilinear import CompactBilinearPooling

    return _normalised(
        recipe,
        CompactBilinearPooling(
            output_dim=recipe.model.pooling_dim,
            method=recipe.model.sketch,
            seed=recipe.seed,
            name="compact_bilinear_pooling",
        ),
    )
