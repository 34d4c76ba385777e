"""Static output shapes and parameter counts of Keras layers and operations, without importing Keras.

:func:`infer` answers, for one layer type, its arguments and the shapes of its
inputs, what Keras would build: the output shape(s), as ``compute_output_shape``
gives them (batch axis included), and the parameter counts ``layer.count_params()``
would report, split into trainable and non-trainable weights. A layer that
Keras would refuse on those inputs raises :class:`ShapeError`.

The rules live in a registry keyed by Keras class name
(:mod:`~modelspec.analysis.shapes.shape_utils`), one module per layer family
as ``keras/src/layers`` lays them out, each rule registered with
``@rule("Conv1D", "Conv2D", ...)``. Aliases such as ``Convolution2D`` reach
their class's rule through :mod:`modelspec.catalog`, which also supplies
argument defaults, so a rule always sees the complete arguments.
:mod:`~modelspec.analysis.shapes.ops` holds the rules of ``op`` nodes.

This package must never import Keras or TensorFlow.
"""

# Each family module registers its rules when imported.
from . import (  # noqa: F401
    activations,
    applications,
    attention,
    convolutional,
    core,
    merging,
    normalization,
    pooling,
    preprocessing,
    regularization,
    reshaping,
    rnn,
)
from .ops import has_op_rule, infer_op
from .shape_utils import (
    Inferred,
    Inputs,
    Layer,
    NotInferable,
    Shape,
    ShapeError,
    broadcast,
    has_rule,
    infer,
    rule,
    rule_types,
)

__all__ = [
    "Inferred",
    "Inputs",
    "Layer",
    "NotInferable",
    "Shape",
    "ShapeError",
    "broadcast",
    "has_op_rule",
    "has_rule",
    "infer",
    "infer_op",
    "rule",
    "rule_types",
]
