"""Shape rules of the recurrent layers: SimpleRNN, GRU, LSTM, ConvLSTM, Bidirectional and TimeDistributed."""

from __future__ import annotations

import math
from typing import Any

from .shape_utils import (
    Inferred,
    Layer,
    Shape,
    channels_first,
    check_positive,
    class_of,
    conv_length,
    fmt,
    fmt_shapes,
    infer,
    join_channels,
    known_axis,
    layout,
    need_min_rank,
    need_rank,
    ntuple,
    padding_mode,
    rule,
    split_channels,
)

_RNN_GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}


@rule(*_RNN_GATES)
def _rnn(layer: Layer) -> Inferred:
    x = layer.one()
    need_rank(
        layer,
        x,
        3,
        "batch, time, features",
        "add a Reshape to (time, features), or RepeatVector to repeat a vector over time",
    )
    units, gates = layer["units"], _RNN_GATES[layer.cls]
    fan_in = known_axis(layer, x, -1, "features")
    bias = gates * units if layer["use_bias"] else 0
    if layer.cls == "GRU" and layer["reset_after"]:
        bias *= 2  # separate input and recurrent biases
    params = gates * units * (fan_in + units) + bias
    state = (x[0], units)
    output = (x[0], x[1], units) if layer["return_sequences"] else state
    return _with_states(layer, output, [state] * (2 if layer.cls == "LSTM" else 1), params)


def _with_states(layer: Layer, output: Shape, states: list[Shape], params: int) -> Inferred:
    if layer["return_state"]:
        return Inferred((output, *states), params)
    return Inferred(output, params)


_CONV_LSTMS = {"ConvLSTM1D": 1, "ConvLSTM2D": 2, "ConvLSTM3D": 3}


@rule(*_CONV_LSTMS)
def _conv_lstm(layer: Layer) -> Inferred:
    rank = _CONV_LSTMS[layer.cls]
    x = layer.one()
    first = channels_first(layer)
    need_rank(layer, x, rank + 3, layout(rank, first, time=True))
    batch, spatial, cin = split_channels((x[0], *x[2:]), first)
    if None in spatial or cin is None:
        raise layer.error(
            f" needs the spatial and channels axes of its input to be known, got {fmt(x)}",
            "give those axes fixed sizes in the input shape",
        )
    kernel = ntuple(layer, "kernel_size", rank)
    strides = ntuple(layer, "strides", rank)
    dilation = ntuple(layer, "dilation_rate", rank)
    padding = padding_mode(layer, ("valid", "same"))
    sizes = [conv_length(*a, padding) for a in zip(spatial, kernel, strides, dilation)]
    check_positive(layer, x, sizes, f"kernel_size {fmt(kernel)}, strides {fmt(strides)}, padding '{padding}'")
    filters = layer["filters"]
    volume = math.prod(kernel)
    params = 4 * filters * (volume * (cin + filters) + bool(layer["use_bias"]))
    state = join_channels(batch, sizes, filters, first)
    output = (batch, x[1], *state[1:]) if layer["return_sequences"] else state
    return _with_states(layer, output, [state, state], params)


def _inner(layer: Layer, name: str, inputs: Shape) -> tuple[str, Inferred]:
    """Type and result of the nested layer in argument ``name`` (a dict with a ``type``)."""
    entry = layer[name]
    if not isinstance(entry, dict) or "type" not in entry:
        raise layer.error(f": {name} must be a layer entry with a type, got {entry!r}", argument=name)
    return entry["type"], infer(entry["type"], entry, inputs, layer.call)


@rule("Bidirectional")
def _bidirectional(layer: Layer) -> Inferred:
    x = layer.one()
    inner_type, forward = _inner(layer, "layer", x)
    if class_of(inner_type) not in {*_RNN_GATES, *_CONV_LSTMS}:
        raise layer.error(f" wraps a recurrent layer, got {inner_type}", argument="layer")
    backward = _inner(layer, "backward_layer", x)[1] if layer["backward_layer"] is not None else forward
    returns_state = isinstance(forward.output[0], tuple)
    fw_out, fw_states = (forward.output[0], forward.output[1:]) if returns_state else (forward.output, ())
    bw_out, bw_states = (backward.output[0], backward.output[1:]) if returns_state else (backward.output, ())
    mode = layer["merge_mode"]
    if mode not in ("concat", "sum", "mul", "ave", None):
        raise layer.error(
            f": merge_mode must be concat, sum, mul, ave or None, got {mode!r}", argument="merge_mode"
        )
    if mode is None:
        outputs: tuple[Any, ...] = (fw_out, bw_out)
    elif mode == "concat":
        outputs = ((*fw_out[:-1], fw_out[-1] + bw_out[-1]),)  # type: ignore[operator]
    elif fw_out != bw_out:
        raise layer.error(
            f": merge_mode '{mode}' needs equal outputs, got {fmt_shapes([fw_out, bw_out])}",
            "give the backward layer the same units, or use merge_mode 'concat'",
            "backward_layer",
        )
    else:
        outputs = (fw_out,)
    outputs = (*outputs, *fw_states, *bw_states)
    return Inferred(
        outputs if len(outputs) > 1 else outputs[0],
        forward.trainable + backward.trainable,
        forward.non_trainable + backward.non_trainable,
    )


@rule("TimeDistributed")
def _time_distributed(layer: Layer) -> Inferred:
    x = layer.one()
    need_min_rank(layer, x, 3, "TimeDistributed applies its layer to each step of (batch, time, ...)")
    _, inner = _inner(layer, "layer", (x[0], *x[2:]))

    def with_time(shape: Shape) -> Shape:
        return (shape[0], x[1], *shape[1:])

    several = bool(inner.output) and isinstance(inner.output[0], tuple)
    output = tuple(map(with_time, inner.output)) if several else with_time(inner.output)  # type: ignore[arg-type]
    return Inferred(output, inner.trainable, inner.non_trainable)  # type: ignore[arg-type]
