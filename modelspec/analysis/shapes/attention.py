"""Shape rules of the attention layers: MultiHeadAttention, Attention and AdditiveAttention."""

from __future__ import annotations

import math

from .shape_utils import Inferred, Layer, Shape, fmt, known_axis, rule


@rule("MultiHeadAttention")
def _multi_head_attention(layer: Layer) -> Inferred:
    inputs = layer.inputs
    if isinstance(inputs, list):  # positional call: (query, value, key)
        inputs = dict(zip(("query", "value", "key"), inputs))
    if isinstance(inputs, tuple) or "query" not in inputs or "value" not in inputs:
        raise layer.error(
            " needs query and value inputs", "for self-attention pass the same tensor as query and value"
        )
    query, value = inputs["query"], inputs["value"]
    key = inputs.get("key") or value
    if value[1:-1] != key[1:-1]:
        raise layer.error(
            f": value {fmt(value)} and key {fmt(key)} must match on every axis but the last",
            "give key the same length as value",
        )
    heads, key_dim = layer["num_heads"], layer["key_dim"]
    value_dim = layer["value_dim"] or key_dim
    out_dims = layer["output_shape"]
    out_dims = (out_dims,) if isinstance(out_dims, int) else tuple(out_dims) if out_dims else None
    q_in = known_axis(layer, query, -1, "last (query)")
    k_in = known_axis(layer, key, -1, "last (key)")
    v_in = known_axis(layer, value, -1, "last (value)")
    out_dims = out_dims or (q_in,)

    bias = bool(layer["use_bias"])
    params = heads * key_dim * (q_in + bias)  # query projection
    params += heads * key_dim * (k_in + bias)  # key projection
    params += heads * value_dim * (v_in + bias)  # value projection
    params += (heads * value_dim + bias) * math.prod(out_dims)  # output projection
    if layer["use_gate"]:
        params += heads * value_dim * (q_in + bias)
    output = (*query[:-1], *out_dims)
    if not _returns_scores(layer):
        return Inferred(output, params)
    return Inferred((output, _attention_scores(layer, query, key, heads)), params)


def _returns_scores(layer: Layer) -> bool:
    return bool(layer.call.get("return_attention_scores"))


def _attention_scores(layer: Layer, query: Shape, key: Shape, heads: int) -> Shape:
    """Shape of the attention scores, following MultiHeadAttention's einsum layout.

    The projected tensors are ``(batch, ..., heads, dim)``; scores keep the
    non-attention axes (batch and heads among them), then the query's and the
    key's attention axes. With the default axes that is (batch, heads, Tq, Tv):
    what the computation returns, where Keras's symbolic call says (batch, heads, Tq, Tq).
    """
    rank = len(query) + 1
    axes = layer["attention_axes"]
    if axes is None:
        axes = tuple(range(1, rank - 2))
    else:
        axes = tuple(a if a >= 0 else rank - 1 + a for a in ([axes] if isinstance(axes, int) else axes))
    q = (*query[:-1], heads)
    k = (*key[:-1], heads)
    kept = [i for i in range(rank - 1) if i not in axes]
    return (*(q[i] for i in kept), *(q[i] for i in axes), *(k[i] for i in axes))


@rule("Attention", "AdditiveAttention")
def _attention(layer: Layer) -> Inferred:
    shapes = layer.several()
    if len(shapes) not in (2, 3):
        raise layer.error(f" expects [query, value] or [query, value, key], got {len(shapes)} inputs")
    query, value = shapes[:2]
    key = shapes[2] if len(shapes) == 3 else value
    if query[-1] is not None and key[-1] is not None and query[-1] != key[-1]:
        raise layer.error(
            f": query {fmt(query)} and key {fmt(key)} must have the same last axis",
            "project them to one size with a Dense layer",
        )
    if layer.cls == "AdditiveAttention":
        params = known_axis(layer, query, -1, "last (query)") if layer["use_scale"] else 0
    else:
        params = bool(layer["use_scale"]) + (layer["score_mode"] == "concat")
    output = (*query[:-1], value[-1])
    if _returns_scores(layer):
        return Inferred((output, (*query[:-1], key[-2])), params)
    return Inferred(output, params)
