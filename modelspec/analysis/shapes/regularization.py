"""Shape rules of the regularization layers (dropout, noise, activity regularization): the shape is kept."""

from __future__ import annotations

from .shape_utils import Inferred, Layer, channels_first, rule, same_shape, spatial_rank

rule("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")(same_shape)


_SPATIAL_DROPOUT = {"SpatialDropout1D": 1, "SpatialDropout2D": 2, "SpatialDropout3D": 3}


@rule(*_SPATIAL_DROPOUT)
def _spatial_dropout(layer: Layer) -> Inferred:
    x = layer.one()
    rank = _SPATIAL_DROPOUT[layer.cls]
    # SpatialDropout1D has no data_format argument: its layout is always (batch, steps, channels).
    spatial_rank(layer, x, rank, rank > 1 and channels_first(layer))
    return Inferred(x)
