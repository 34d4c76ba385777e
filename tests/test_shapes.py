"""Static shape inference (modelspec.analysis.shapes) against what Keras really builds.

Every case builds the Keras layer on symbolic ``keras.Input``s, calls it, and
compares the output shape(s) and the trainable / non-trainable parameter
counts with :func:`infer`. Every mismatch case checks that the rule raises
:class:`ShapeError` and that Keras refuses the same input too, so a rule never
reports an error Keras would not.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from modelspec import catalog
from modelspec.analysis.shapes import Inferred, NotInferable, ShapeError, has_rule, infer, rule_types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N = None  # a free axis, to keep the tables short


def case(type_name, args, inputs, call=None, id=None):
    """One table row: the layer, its spec arguments, its input shape(s), constant call arguments."""
    return pytest.param(type_name, args, inputs, call or {}, id=id or type_name)


CASES = [
    # Core
    case("Dense", {"units": 8}, (N, 4)),
    case("Dense", {"units": 8, "use_bias": False}, (N, 5, 4), id="Dense-3d-nobias"),
    case("Dense", {"units": 3}, (2, N, 4), id="Dense-fixed-batch"),
    case("Dense", {"units": 8, "lora_rank": 2}, (N, 4), id="Dense-lora"),
    case("Dense", {"units": 8, "trainable": False}, (N, 4), id="Dense-frozen"),
    case("EinsumDense", {"equation": "ab,bc->ac", "output_shape": 8, "bias_axes": "c"}, (N, 4)),
    case(
        "EinsumDense",
        {"equation": "abc,cd->abd", "output_shape": [N, 16], "bias_axes": "d"},
        (N, 7, 4),
        id="EinsumDense-seq",
    ),
    case(
        "EinsumDense",
        {"equation": "...b,bc->...c", "output_shape": 6},
        (N, 3, 5, 4),
        id="EinsumDense-ellipsis",
    ),
    case("Embedding", {"input_dim": 100, "output_dim": 8}, (N, 10)),
    case("Embedding", {"input_dim": 50, "output_dim": 4}, (N, N), id="Embedding-free"),
    case("Embedding", {"input_dim": 50, "output_dim": 4, "lora_rank": 2}, (N, 6), id="Embedding-lora"),
    # Activations, regularization, identity-shaped layers
    case("Activation", {"activation": "relu"}, (N, 3, 4)),
    case("ReLU", {}, (N, 4)),
    case("LeakyReLU", {}, (N, 4)),
    case("ELU", {}, (N, 4)),
    case("Softmax", {"axis": 1}, (N, 3, 4)),
    case("PReLU", {}, (N, 5, 3)),
    case("PReLU", {"shared_axes": [1]}, (N, N, 3), id="PReLU-shared"),
    case("Dropout", {"rate": 0.5}, (N, 4)),
    case("SpatialDropout1D", {"rate": 0.5}, (N, 5, 3)),
    case("SpatialDropout2D", {"rate": 0.5, "data_format": "channels_first"}, (N, 3, 8, 8)),
    case("SpatialDropout3D", {"rate": 0.5}, (N, 4, 4, 4, 2)),
    case("GaussianNoise", {"stddev": 0.1}, (N, 4)),
    case("GaussianDropout", {"rate": 0.1}, (N, 4)),
    case("AlphaDropout", {"rate": 0.1}, (N, 4)),
    case("ActivityRegularization", {"l1": 0.01}, (N, 4)),
    case("Identity", {}, (N, 2, 3)),
    case("Masking", {}, (N, 5, 3)),
    # Reshaping
    case("Flatten", {}, (N, 4, 5, 3)),
    case("Flatten", {}, (N, N, 3), id="Flatten-free"),
    case("Flatten", {}, (N,), id="Flatten-1d"),
    case("Reshape", {"target_shape": [3, 4]}, (N, 12)),
    case("Reshape", {"target_shape": [-1, 4]}, (N, 2, 6), id="Reshape-minus-one"),
    case("Reshape", {"target_shape": [-1, 2, 2]}, (N, N, 4), id="Reshape-free"),
    case("Permute", {"dims": [2, 1]}, (N, 3, 4)),
    case("RepeatVector", {"n": 3}, (N, 4)),
    case("ZeroPadding1D", {"padding": [1, 2]}, (N, 5, 3)),
    case("ZeroPadding2D", {"padding": [[1, 2], [3, 4]]}, (N, 5, 6, 3)),
    case(
        "ZeroPadding2D", {"padding": 1, "data_format": "channels_first"}, (N, 3, 5, N), id="ZeroPadding2D-cf"
    ),
    case("ZeroPadding3D", {}, (N, 4, 4, 4, 2)),
    case("Cropping1D", {"cropping": [1, 2]}, (N, 6, 3)),
    case("Cropping2D", {"cropping": [[1, 1], [2, 0]]}, (N, 8, 8, 3)),
    case("Cropping2D", {"cropping": 1, "data_format": "channels_first"}, (N, 3, 8, 6), id="Cropping2D-cf"),
    case("Cropping3D", {}, (N, 4, 5, 6, 2)),
    case("UpSampling1D", {"size": 3}, (N, 5, 3)),
    case("UpSampling2D", {"size": [2, 3]}, (N, 4, N, 3)),
    case("UpSampling2D", {"data_format": "channels_first"}, (N, 3, 4, 5), id="UpSampling2D-cf"),
    case("UpSampling3D", {}, (N, 2, 3, 4, 1)),
    # Convolutions
    case("Conv1D", {"filters": 4, "kernel_size": 3}, (N, 10, 2)),
    case(
        "Conv1D",
        {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"},
        (N, 11, 2),
        id="Conv1D-same-s2",
    ),
    case(
        "Conv1D",
        {"filters": 4, "kernel_size": 3, "padding": "causal", "dilation_rate": 2},
        (N, 10, 2),
        id="Conv1D-causal-dilated",
    ),
    case(
        "Conv1D",
        {"filters": 4, "kernel_size": 3, "data_format": "channels_first"},
        (N, 2, 10),
        id="Conv1D-cf",
    ),
    case("Conv2D", {"filters": 8, "kernel_size": 3}, (N, 28, 28, 3)),
    case(
        "Conv2D",
        {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"},
        (N, 7, 7, 3),
        id="Conv2D-same",
    ),
    case(
        "Conv2D", {"filters": 8, "kernel_size": [3, 5], "strides": [2, 1]}, (N, 15, 16, 3), id="Conv2D-rect"
    ),
    case("Conv2D", {"filters": 8, "kernel_size": 3, "dilation_rate": 2}, (N, 16, 16, 3), id="Conv2D-dilated"),
    case("Conv2D", {"filters": 8, "kernel_size": 3, "groups": 2}, (N, 9, 9, 4), id="Conv2D-groups"),
    case("Conv2D", {"filters": 8, "kernel_size": 3, "use_bias": False}, (N, N, N, 3), id="Conv2D-free"),
    case(
        "Conv2D",
        {"filters": 8, "kernel_size": 3, "padding": "same", "data_format": "channels_first"},
        (N, 3, 9, 9),
        id="Conv2D-cf",
    ),
    case("Convolution2D", {"filters": 2, "kernel_size": 1}, (N, 4, 4, 3), id="Convolution2D-alias"),
    case("Conv3D", {"filters": 4, "kernel_size": 2, "strides": 2}, (N, 8, 9, 10, 2)),
    case("Conv1DTranspose", {"filters": 4, "kernel_size": 3, "strides": 2}, (N, 5, 2)),
    case(
        "Conv2DTranspose",
        {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"},
        (N, 7, 8, 3),
        id="Conv2DTranspose-same",
    ),
    case(
        "Conv2DTranspose",
        {"filters": 4, "kernel_size": 3, "strides": 2, "output_padding": 1},
        (N, 7, 7, 3),
        id="Conv2DTranspose-output-padding",
    ),
    case(
        "Conv2DTranspose",
        {"filters": 4, "kernel_size": 4, "strides": 2, "padding": "same", "output_padding": 1},
        (N, 7, 7, 3),
        id="Conv2DTranspose-same-output-padding",
    ),
    case(
        "Conv2DTranspose",
        {"filters": 4, "kernel_size": 3, "dilation_rate": 2, "data_format": "channels_first"},
        (N, 3, 6, N),
        id="Conv2DTranspose-cf-dilated",
    ),
    case("Conv3DTranspose", {"filters": 2, "kernel_size": 2, "strides": 2}, (N, 3, 4, 5, 1)),
    case("DepthwiseConv1D", {"kernel_size": 3, "depth_multiplier": 2}, (N, 10, 3)),
    case("DepthwiseConv2D", {"kernel_size": 3, "strides": 2, "padding": "same"}, (N, 9, 9, 4)),
    case(
        "DepthwiseConv2D",
        {"kernel_size": 3, "depth_multiplier": 3, "data_format": "channels_first", "use_bias": False},
        (N, 4, 9, 9),
        id="DepthwiseConv2D-cf",
    ),
    case("SeparableConv1D", {"filters": 6, "kernel_size": 3, "depth_multiplier": 2}, (N, 10, 3)),
    case("SeparableConv2D", {"filters": 6, "kernel_size": 3, "padding": "same"}, (N, 9, 9, 4)),
    # Pooling
    case("MaxPooling1D", {}, (N, 11, 3)),
    case("MaxPooling2D", {"pool_size": 3, "strides": 1, "padding": "same"}, (N, 7, 7, 3)),
    case("MaxPooling2D", {"pool_size": 3, "strides": 2}, (N, 8, N, 3), id="MaxPooling2D-free"),
    case("AveragePooling2D", {"pool_size": 2, "data_format": "channels_first"}, (N, 3, 9, 8)),
    case("AvgPool2D", {"pool_size": [2, 3]}, (N, 8, 9, 3), id="AvgPool2D-alias"),
    case("MaxPooling3D", {"padding": "same"}, (N, 5, 5, 5, 2)),
    case("AveragePooling3D", {"pool_size": 2}, (N, 4, 6, 8, 1)),
    case("GlobalAveragePooling1D", {}, (N, 5, 3)),
    case("GlobalMaxPooling2D", {"keepdims": True}, (N, 5, 5, 3)),
    case("GlobalAveragePooling2D", {"data_format": "channels_first", "keepdims": True}, (N, 3, 5, 5)),
    case("GlobalAveragePooling2D", {"data_format": "channels_first"}, (N, 3, 5, 5), id="GAP2D-cf-flat"),
    case("GlobalMaxPooling3D", {}, (N, 2, 3, 4, 5)),
    case("AveragePooling1D", {"pool_size": 2, "strides": 1, "padding": "same"}, (N, 7, 2)),
    case("GlobalMaxPooling1D", {"data_format": "channels_first"}, (N, 3, 5)),
    case("GlobalAveragePooling3D", {"keepdims": True}, (N, 2, 3, 4, 5)),
    case("AdaptiveAveragePooling1D", {"output_size": 3}, (N, 12, 2)),
    case("AdaptiveAveragePooling2D", {"output_size": 4}, (N, 16, 16, 3)),
    case("AdaptiveAveragePooling3D", {"output_size": 2, "data_format": "channels_first"}, (N, 3, 4, 4, 4)),
    case("AdaptiveMaxPooling1D", {"output_size": 4}, (N, 8, 2)),
    case("AdaptiveMaxPooling2D", {"output_size": [2, 3], "data_format": "channels_first"}, (N, 3, 8, 9)),
    case("AdaptiveMaxPooling3D", {"output_size": [1, 2, 2]}, (N, 4, 4, 4, 1)),
    # Merging
    case("Concatenate", {}, [(N, 4), (N, 6)]),
    case("Concatenate", {"axis": 1}, [(N, 3, 4), (N, 5, 4), (N, 1, 4)], id="Concatenate-axis1"),
    case("Concatenate", {"axis": -2}, [(N, N, 4), (N, 5, 4)], id="Concatenate-free"),
    case("Add", {}, [(N, 4), (N, 4)]),
    case("Add", {}, [(N, 1, 4), (N, 3, 4)], id="Add-broadcast"),
    case("Add", {}, [(N, 3, 4), (N, 4)], id="Add-ranks"),
    case("Subtract", {}, [(N, 4), (N, 4)]),
    case("Multiply", {}, [(N, 4), (N, 4), (N, 4)]),
    case("Average", {}, [(N, 2, 4), (N, 2, 4)]),
    case("Maximum", {}, [(N, 4), (N, 4)]),
    case("Minimum", {}, [(N, 4), (N, 4)]),
    case("Dot", {"axes": 1}, [(N, 4), (N, 4)]),
    case("Dot", {"axes": [2, 2]}, [(N, 3, 4), (N, 5, 4)], id="Dot-batch-matmul"),
    # Normalization and preprocessing
    case("BatchNormalization", {}, (N, 8, 8, 3)),
    case("BatchNormalization", {"axis": 1}, (N, 3, 8, 8), id="BatchNormalization-cf"),
    case("BatchNormalization", {"center": False, "scale": False}, (N, 5), id="BatchNormalization-plain"),
    case("BatchNormalization", {"renorm": True}, (N, 5), id="BatchNormalization-renorm"),
    case("BatchNormalization", {"trainable": False}, (N, 5), id="BatchNormalization-frozen"),
    case("LayerNormalization", {}, (N, 5, 6)),
    case("LayerNormalization", {"axis": [-2, -1], "center": False}, (N, 5, 6), id="LayerNormalization-axes"),
    case("GroupNormalization", {"groups": 4}, (N, 8, 8, 16)),
    case("GroupNormalization", {"groups": -1}, (N, 5, 6), id="GroupNormalization-instance"),
    case("UnitNormalization", {}, (N, 5)),
    case("RMSNormalization", {}, (N, 5, 6)),
    case("Normalization", {}, (N, 5)),
    case("Normalization", {"axis": None}, (N, 5), id="Normalization-scalar"),
    case("Normalization", {"mean": 2.0, "variance": 4.0}, (N, 5), id="Normalization-given"),
    case("Rescaling", {"scale": 0.5}, (N, 8, 8, 3)),
    case("Resizing", {"height": 16, "width": 20}, (N, 32, 32, 3)),
    case(
        "Resizing",
        {"height": 16, "width": 20, "data_format": "channels_first"},
        (N, 3, N, N),
        id="Resizing-cf",
    ),
    case("CenterCrop", {"height": 4, "width": 5}, (N, 8, 8, 3)),
    case("RandomCrop", {"height": 4, "width": 5}, (N, 8, 8, 3)),
    case("RandomFlip", {}, (N, 8, 8, 3)),
    case("RandomRotation", {"factor": 0.1}, (N, 8, 8, 3)),
    case("RandomZoom", {"height_factor": 0.1}, (N, 8, 8, 3)),
    case("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1}, (N, 8, 8, 3)),
    case("RandomContrast", {"factor": 0.2}, (N, 8, 8, 3)),
    case("RandomBrightness", {"factor": 0.2}, (N, 8, 8, 3)),
    # Recurrent
    case("LSTM", {"units": 6}, (N, 5, 3)),
    case("LSTM", {"units": 6, "return_sequences": True}, (N, N, 3), id="LSTM-sequences"),
    case("LSTM", {"units": 6, "return_state": True}, (N, 5, 3), id="LSTM-state"),
    case(
        "LSTM",
        {"units": 6, "return_sequences": True, "return_state": True, "use_bias": False},
        (N, 5, 3),
        id="LSTM-sequences-state",
    ),
    case("GRU", {"units": 4}, (N, 5, 3)),
    case("GRU", {"units": 4, "reset_after": False, "return_state": True}, (N, 5, 3), id="GRU-v1-state"),
    case("SimpleRNN", {"units": 4, "return_sequences": True}, (N, 5, 3)),
    case("Bidirectional", {"layer": {"type": "LSTM", "units": 4}}, (N, 5, 3)),
    case(
        "Bidirectional",
        {"layer": {"type": "GRU", "units": 4, "return_sequences": True}, "merge_mode": "sum"},
        (N, 5, 3),
        id="Bidirectional-sum",
    ),
    case(
        "Bidirectional", {"layer": {"type": "LSTM", "units": 4}, "merge_mode": "mul"}, (N, 5, 3), id="Bi-mul"
    ),
    case(
        "Bidirectional",
        {"layer": {"type": "SimpleRNN", "units": 4}, "merge_mode": "ave"},
        (N, 5, 3),
        id="Bi-ave",
    ),
    case(
        "Bidirectional", {"layer": {"type": "LSTM", "units": 4}, "merge_mode": None}, (N, 5, 3), id="Bi-none"
    ),
    case(
        "Bidirectional",
        {"layer": {"type": "LSTM", "units": 4, "return_state": True}},
        (N, 5, 3),
        id="Bi-concat-state",
    ),
    case(
        "Bidirectional",
        {
            "layer": {"type": "GRU", "units": 4, "return_state": True, "return_sequences": True},
            "merge_mode": None,
        },
        (N, 5, 3),
        id="Bi-none-state",
    ),
    case(
        "Bidirectional",
        {
            "layer": {"type": "LSTM", "units": 4},
            "backward_layer": {"type": "LSTM", "units": 4, "go_backwards": True, "use_bias": False},
        },
        (N, 5, 3),
        id="Bi-backward-layer",
    ),
    case("TimeDistributed", {"layer": {"type": "Dense", "units": 6}}, (N, 5, 4)),
    case(
        "TimeDistributed",
        {"layer": {"type": "Conv2D", "filters": 4, "kernel_size": 3}},
        (N, 5, 8, 8, 3),
        id="TimeDistributed-Conv2D",
    ),
    case("ConvLSTM2D", {"filters": 4, "kernel_size": 3}, (N, 5, 8, 8, 2)),
    case(
        "ConvLSTM2D",
        {"filters": 4, "kernel_size": 3, "padding": "same", "return_sequences": True, "return_state": True},
        (N, N, 8, 8, 2),
        id="ConvLSTM2D-sequences-state",
    ),
    case(
        "ConvLSTM2D",
        {"filters": 4, "kernel_size": 3, "strides": 2, "data_format": "channels_first"},
        (N, 5, 2, 9, 9),
        id="ConvLSTM2D-cf",
    ),
    case("ConvLSTM1D", {"filters": 3, "kernel_size": 2, "return_sequences": True}, (N, 4, 6, 2)),
    case("ConvLSTM3D", {"filters": 2, "kernel_size": 2, "use_bias": False}, (N, 3, 4, 4, 4, 1)),
    # Attention
    case("MultiHeadAttention", {"num_heads": 2, "key_dim": 4}, {"query": (N, 5, 8), "value": (N, 5, 8)}),
    case(
        "MultiHeadAttention",
        {"num_heads": 3, "key_dim": 4, "value_dim": 5, "output_shape": 7},
        {"query": (N, 5, 8), "value": (N, 7, 6), "key": (N, 7, 3)},
        id="MHA-cross",
    ),
    case(
        "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 4, "use_bias": False, "use_gate": True},
        {"query": (N, N, 8), "value": (N, N, 6)},
        id="MHA-nobias-gate",
    ),
    case(
        "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 4},
        {"query": (N, 5, 8), "value": (N, 5, 8)},
        {"return_attention_scores": True},
        id="MHA-scores",
    ),
    case(
        "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 3, "output_shape": [2, 5]},
        {"query": (N, 4, 3, 8), "value": (N, 6, 3, 8)},
        id="MHA-4d-output-shape",
    ),
    case("Attention", {}, [(N, 5, 4), (N, 7, 4)]),
    case(
        "Attention",
        {"use_scale": True, "score_mode": "concat"},
        [(N, 5, 4), (N, 7, 6), (N, 7, 4)],
        id="Attn-key",
    ),
    case("Attention", {}, [(N, 5, 4), (N, 7, 4)], {"return_attention_scores": True}, id="Attention-scores"),
    case("AdditiveAttention", {}, [(N, 5, 4), (N, 7, 4)]),
    # keras.applications' own layers (custom objects: not in keras.layers)
    case("LayerScale", {"init_values": 1e-6, "projection_dim": 4}, (N, 5, 5, 4)),
    case("LayerScale", {"init_values": 0.5, "projection_dim": 4}, (N, 4), id="LayerScale-2d"),
    case("CustomScaleLayer", {"scale": 0.17}, [(N, 3, 3, 8), (N, 3, 3, 8)]),
]


# --------------------------------------------------------------------------------------
# Building the real layer


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


APPLICATION_LAYERS = {
    "LayerScale": "keras.src.applications.convnext",
    "CustomScaleLayer": "keras.src.applications.inception_resnet_v2",
}
"""Layers of keras.applications that keras.layers does not export: class name -> module."""


def make_layer(keras, type_name, args):
    """The Keras layer for a spec entry; nested entries (dicts with a type) are made first."""
    kwargs = {k: make_layer(keras, v["type"], v) if isinstance(v, dict) else v for k, v in args.items()}
    kwargs.pop("type", None)
    if type_name in APPLICATION_LAYERS:
        import importlib

        return getattr(importlib.import_module(APPLICATION_LAYERS[type_name]), type_name)(**kwargs)
    return getattr(keras.layers, type_name)(**kwargs)


def symbolic(keras, inputs):
    """``keras.Input``s with the given shape(s), in the same structure."""
    if isinstance(inputs, dict):
        return {k: symbolic(keras, v) for k, v in inputs.items()}
    if isinstance(inputs, list):
        return [symbolic(keras, v) for v in inputs]
    return keras.Input(shape=inputs[1:], batch_size=inputs[0])


def keras_result(keras, type_name, args, inputs, call):
    """What Keras builds: output shape(s) and (trainable, non-trainable) parameter counts."""
    layer = make_layer(keras, type_name, args)
    x = symbolic(keras, inputs)
    out = layer(**x, **call) if isinstance(x, dict) else layer(x, **call)
    several = isinstance(out, (list, tuple))
    shapes = tuple(tuple(t.shape) for t in out) if several else tuple(out.shape)
    return shapes, count(layer.trainable_weights), count(layer.non_trainable_weights)


def count(weights):
    """Number of scalars in a list of Keras weights."""
    return int(sum(np.prod(w.shape) for w in weights))


@pytest.mark.parametrize(("type_name", "args", "inputs", "call"), CASES)
def test_matches_keras(keras, type_name, args, inputs, call):
    expected = keras_result(keras, type_name, args, inputs, call)
    got = infer(type_name, args, inputs, call)
    assert (got.output, got.trainable, got.non_trainable) == expected


def test_attention_scores_match_eager_keras(keras):
    """Scores are (batch, heads, Tq, Tv), checked on real tensors.

    Keras's symbolic MultiHeadAttention reports (batch, heads, Tq, Tq) even when Tq != Tv.
    """
    rng = np.random.default_rng(0)
    shapes = {"query": (2, 5, 8), "value": (2, 7, 6)}
    layer = keras.layers.MultiHeadAttention(num_heads=3, key_dim=4)
    data = {k: rng.normal(size=s).astype("float32") for k, s in shapes.items()}
    out, scores = layer(**data, return_attention_scores=True)
    got = infer(
        "MultiHeadAttention", {"num_heads": 3, "key_dim": 4}, shapes, {"return_attention_scores": True}
    )
    assert got.output == (tuple(out.shape), tuple(scores.shape)) == ((2, 5, 8), (2, 3, 5, 7))


@pytest.mark.parametrize("application", ["MobileNetV2", "Xception"])
def test_every_layer_of_a_keras_application_matches(keras, application):
    """Each layer of a real network, from its config and input shapes, as Keras built it."""
    model = getattr(keras.applications, application)(weights=None, input_shape=(96, 96, 3))
    checked = 0
    for layer in model.layers[1:]:  # after the InputLayer
        args = {k: v for k, v in layer.get_config().items() if k not in ("name", "dtype")}
        inputs = keras.tree.map_structure(lambda t: tuple(t.shape), layer.input)
        got = infer(type(layer).__name__, args, inputs)
        expected = (
            tuple(layer.output.shape),
            count(layer.trainable_weights),
            count(layer.non_trainable_weights),
        )
        assert (got.output, got.trainable, got.non_trainable) == expected, layer.name
        checked += 1
    assert checked > 100


# --------------------------------------------------------------------------------------
# Mismatches: the rule and Keras both refuse


def bad(type_name, args, inputs, quoted, argument=None, id=None):
    """A row of MISMATCHES: ``quoted`` are the shapes the message must show."""
    return pytest.param(type_name, args, inputs, quoted, argument, id=id or type_name)


MISMATCHES = [
    bad("Add", {}, [(N, 32), (N, 64)], [(N, 32), (N, 64)]),
    bad("Multiply", {}, [(N, 3, 4), (N, 2, 4)], [(N, 3, 4), (N, 2, 4)]),
    bad("Subtract", {}, [(N, 4), (N, 4), (N, 4)], [], id="Subtract-three"),
    bad("Concatenate", {}, [(N, 3, 4), (N, 5, 4)], [(N, 3, 4), (N, 5, 4)]),
    bad("Concatenate", {}, [(N, 3, 4), (N, 4)], [(N, 3, 4), (N, 4)], id="Concatenate-ranks"),
    bad("Dense", {"units": 4}, (N,), [(N,)]),
    bad("Dense", {"units": 4}, (N, N), [(N, N)], id="Dense-free-features"),
    bad("Conv2D", {"filters": 4, "kernel_size": 3}, (N, 28, 28), [(N, 28, 28)]),
    bad("Conv2D", {"filters": 4, "kernel_size": 5}, (N, 3, 3, 1), [(N, 3, 3, 1)], id="Conv2D-too-small"),
    bad(
        "Conv2D",
        {"filters": 4, "kernel_size": 3, "groups": 2},
        (N, 8, 8, 3),
        [(N, 8, 8, 3)],
        "groups",
        "Conv2D-groups",
    ),
    bad("MaxPooling2D", {}, (N, 8, 8), [(N, 8, 8)]),
    bad("Reshape", {"target_shape": [5, 3]}, (N, 12), [(N, 12)], "target_shape"),
    bad("Reshape", {"target_shape": [-1, 5]}, (N, 3, 4), [(N, 3, 4)], "target_shape", "Reshape-minus-one"),
    bad("Permute", {"dims": [2, 1]}, (N, 2, 3, 4), [(N, 2, 3, 4)]),
    bad("RepeatVector", {"n": 2}, (N, 3, 4), [(N, 3, 4)]),
    bad("Cropping2D", {"cropping": 4}, (N, 8, 6, 3), [(N, 8, 6, 3)], "cropping"),
    bad("LSTM", {"units": 4}, (N, 4), [(N, 4)]),
    bad("GRU", {"units": 4}, (N, 5, N), [(N, 5, N)], id="GRU-free-features"),
    bad("TimeDistributed", {"layer": {"type": "Dense", "units": 2}}, (N, 4), [(N, 4)]),
    bad(
        "Bidirectional", {"layer": {"type": "Dense", "units": 2}}, (N, 5, 3), [], "layer", "Bi-not-recurrent"
    ),
    bad("MultiHeadAttention", {"num_heads": 2, "key_dim": 4}, (N, 5, 8), [], id="MHA-no-value"),
    bad("GroupNormalization", {"groups": 4}, (N, 6), [(N, 6)], "groups"),
    bad("BatchNormalization", {"axis": 3}, (N, 4, 5), [(N, 4, 5)], "axis"),
    bad("Dot", {"axes": 1}, [(N, 4), (N, 5)], [(N, 4), (N, 5)], "axes"),
    bad(
        "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 4},
        {"query": (N, 5, 8), "value": (N, 7, 8), "key": (N, 6, 8)},
        [(N, 7, 8), (N, 6, 8)],
        id="MHA-key-value",
    ),
]


@pytest.mark.parametrize(("type_name", "args", "inputs", "quoted", "argument"), MISMATCHES)
def test_mismatch_is_refused_by_both(keras, type_name, args, inputs, quoted, argument):
    with pytest.raises(ShapeError) as caught:
        infer(type_name, args, inputs)
    error = caught.value
    assert error.message.startswith(type_name)
    for shape in quoted:
        assert repr(shape) in error.message
    assert error.argument == argument
    with pytest.raises(Exception):  # noqa: B017 - Keras raises ValueError, TypeError, ...
        keras_result(keras, type_name, args, inputs, {})


def test_messages_read_like_keras():
    with pytest.raises(ShapeError, match=r"^Add: inputs have shapes \(None, 32\) and \(None, 64\)$") as e:
        infer("Add", {}, [(None, 32), (None, 64)])
    assert e.value.hint
    with pytest.raises(ShapeError, match=r"^Dense expects at least 2 dimensions, got \(None,\)$"):
        infer("Dense", {"units": 3}, (None,))
    with pytest.raises(
        ShapeError, match=r"^LSTM expects 3 dimensions \(batch, time, features\), got \(None, 4\)$"
    ):
        infer("LSTM", {"units": 3}, (None, 4))


# --------------------------------------------------------------------------------------
# The interface


REQUIRED = """
    Dense EinsumDense Activation ReLU LeakyReLU ELU PReLU Softmax Dropout SpatialDropout1D
    SpatialDropout2D SpatialDropout3D GaussianNoise GaussianDropout AlphaDropout ActivityRegularization
    Identity Flatten Reshape Permute RepeatVector Conv1D Conv2D Conv3D Conv1DTranspose Conv2DTranspose
    Conv3DTranspose DepthwiseConv1D DepthwiseConv2D SeparableConv1D SeparableConv2D MaxPooling1D
    MaxPooling2D MaxPooling3D AveragePooling1D AveragePooling2D AveragePooling3D GlobalMaxPooling1D
    GlobalMaxPooling2D GlobalMaxPooling3D GlobalAveragePooling1D GlobalAveragePooling2D
    GlobalAveragePooling3D ZeroPadding1D ZeroPadding2D ZeroPadding3D Cropping1D Cropping2D Cropping3D
    UpSampling1D UpSampling2D UpSampling3D Concatenate Add Subtract Multiply Average Maximum Minimum Dot
    BatchNormalization LayerNormalization GroupNormalization UnitNormalization Normalization Rescaling
    Resizing CenterCrop Embedding LSTM GRU SimpleRNN Bidirectional TimeDistributed ConvLSTM2D
    MultiHeadAttention Attention AdditiveAttention Masking
    Convolution2D MaxPool2D AvgPool1D GlobalAvgPool2D SeparableConvolution2D
""".split()  # noqa: SIM905 - a word list reads better than 85 quoted strings


def test_registry_covers_the_required_types():
    assert [name for name in REQUIRED if not has_rule(name)] == []
    assert "Conv2D" in rule_types() and "Convolution2D" not in rule_types()  # keyed by Keras class
    assert not has_rule("HashedCrossing")
    with pytest.raises(NotInferable):
        infer("HashedCrossing", {"num_bins": 4}, [(None, 1), (None, 1)])


def test_a_class_named_like_an_application_layer_but_with_other_arguments_is_not_inferred():
    assert has_rule("LayerScale") and has_rule("CustomScaleLayer")  # keras.applications' own, by name
    with pytest.raises(NotInferable, match="is not keras"):
        infer("LayerScale", {"dim": 4}, (None, 4))
    with pytest.raises(NotInferable):
        infer("CustomScaleLayer", {"scale": 0.1, "axis": 1}, [(None, 4), (None, 4)])


def test_every_rule_is_compared_with_keras():
    compared = {
        row.values[0] if row.values[0] in APPLICATION_LAYERS else catalog.layer(row.values[0]).cls
        for row in [*CASES, *ENCODINGS]
    }
    assert [name for name in rule_types() if name not in compared] == []


def test_free_axes_stay_free_and_defaults_come_from_the_catalog():
    assert infer("Conv2D", {"filters": 2, "kernel_size": 3}, [None, None, None, 1]) == Inferred(
        (None, None, None, 2), 20, 0
    )
    assert infer("MaxPooling2D", {}, (None, 9, None, 1)).output == (None, 4, None, 1)


def test_missing_required_argument_names_it():
    with pytest.raises(ShapeError) as e:
        infer("Dense", {}, (None, 4))
    assert e.value.argument == "units"


def test_importing_shapes_does_not_import_keras():
    code = (
        "import sys, modelspec.analysis.shapes as s; "
        "s.infer('Dense', {'units': 2}, (None, 3)); "
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------
# Encoding layers: their output size follows from their arguments

ENCODINGS = [
    pytest.param("CategoryEncoding", {"num_tokens": 10}, (N, 3), "int32", id="CategoryEncoding"),
    pytest.param(
        "CategoryEncoding", {"num_tokens": 10, "output_mode": "one_hot"}, (N, 1), "int32", id="CE-one-hot"
    ),
    pytest.param(
        "CategoryEncoding", {"num_tokens": 10, "output_mode": "one_hot"}, (N, 3), "int32", id="CE-one-hot-3"
    ),
    pytest.param("Hashing", {"num_bins": 7}, (N, 3), "int32", id="Hashing"),
    pytest.param(
        "Hashing", {"num_bins": 7, "output_mode": "multi_hot"}, (N, 3), "int32", id="Hashing-multi-hot"
    ),
    pytest.param(
        "Discretization", {"bin_boundaries": [0.0, 1.0, 2.0]}, (N, 3), "float32", id="Discretization"
    ),
    pytest.param(
        "Discretization",
        {"bin_boundaries": [0.0, 1.0], "output_mode": "one_hot"},
        (N, 3),
        "float32",
        id="Disc-one-hot",
    ),
    pytest.param(
        "Discretization", {"num_bins": 4, "output_mode": "count"}, (N, 2, 3), "float32", id="Disc-count"
    ),
    pytest.param("StringLookup", {"vocabulary": ["a", "b", "c"]}, (N, 3), "string", id="StringLookup"),
    pytest.param(
        "StringLookup",
        {"vocabulary": ["a", "b", "c"], "output_mode": "count", "mask_token": "", "num_oov_indices": 2},
        (N, 3),
        "string",
        id="StringLookup-count-mask",
    ),
    pytest.param(
        "StringLookup",
        {"max_tokens": 20, "pad_to_max_tokens": True, "output_mode": "multi_hot"},
        (N, 3),
        "string",
        id="StringLookup-padded",
    ),
    pytest.param(
        "IntegerLookup",
        {"vocabulary": [4, 5, 6, 7], "output_mode": "one_hot"},
        (N, 2),
        "int64",
        id="IntegerLookup",
    ),
    pytest.param(
        "TextVectorization",
        {"max_tokens": 50, "output_sequence_length": 8},
        (N,),
        "string",
        id="TextVectorization",
    ),
    pytest.param(
        "TextVectorization",
        {"vocabulary": ["a", "b"], "output_mode": "multi_hot"},
        (N, 1),
        "string",
        id="TV-multi-hot",
    ),
    pytest.param(
        "TextVectorization",
        {"max_tokens": 30, "pad_to_max_tokens": True, "output_mode": "count"},
        (N,),
        "string",
        id="TV-padded",
    ),
]


@pytest.mark.parametrize(("type_name", "args", "inputs", "dtype"), ENCODINGS)
def test_encodings_match_keras(keras, type_name, args, inputs, dtype):
    layer = make_layer(keras, type_name, args)
    out = layer(keras.Input(shape=inputs[1:], dtype=dtype))
    got = infer(type_name, args, inputs)
    assert (got.output, got.trainable + got.non_trainable) == (tuple(out.shape), layer.count_params())


def test_an_encoding_whose_size_is_known_once_adapted_is_not_inferable():
    with pytest.raises(NotInferable, match="known once it is adapted"):
        infer("StringLookup", {"output_mode": "multi_hot", "max_tokens": 100}, (N, 3))
    assert infer("StringLookup", {}, (N, 3)).output == (N, 3)  # indices: the input's shape
