"""Shape rules of layers of keras.applications that keras.layers does not export."""

from __future__ import annotations

from .shape_utils import Inferred, Layer, NotInferable, broadcast, rule

# ConvNeXt's ``LayerScale`` (keras.src.applications.convnext) and InceptionResNetV2's
# ``CustomScaleLayer`` (keras.src.applications.inception_resnet_v2) reach a spec as custom
# objects. A user class of the same name with other arguments is not theirs: its shape stays unknown.
_APPLICATION_ARGS = {
    "LayerScale": {"init_values", "projection_dim"},
    "CustomScaleLayer": {"scale"},
}


def _application_layer(layer: Layer) -> None:
    expected = _APPLICATION_ARGS[layer.cls]
    if set(layer.args) - {"trainable", "dtype"} != expected:
        raise NotInferable(f"{layer.type} with arguments {sorted(layer.args)} is not keras.applications' own")


@rule("LayerScale")
def _layer_scale(layer: Layer) -> Inferred:
    _application_layer(layer)
    dim = layer["projection_dim"]
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise layer.error(f": projection_dim must be an int, got {dim!r}", argument="projection_dim")
    return Inferred(broadcast(layer.type, layer.one(), (dim,)), dim)  # x * gamma, gamma of shape (dim,)


@rule("CustomScaleLayer")
def _custom_scale(layer: Layer) -> Inferred:
    _application_layer(layer)
    shapes = layer.several()
    if len(shapes) != 2:
        raise layer.error(f" expects 2 inputs, got {len(shapes)}")
    return Inferred(broadcast(layer.type, *shapes))  # inputs[0] + inputs[1] * scale
