"""Shared test helpers: paths, and comparing a compiled model with a hand-written one."""

from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
import resource
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# CI runs every property test on the same examples, so a red run reproduces on any
# machine (HYPOTHESIS_PROFILE=ci); elsewhere Hypothesis explores new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore"))

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
DATA = SPECS / "data"
CASES = pathlib.Path(__file__).resolve().parent / "cases"
HUB_SPECS = SPECS / "hub"
"""Example specs written with KerasHub's layers: they need ``--plugin keras_hub`` (the ``hub`` extra)."""
HAS_HUB = importlib.util.find_spec("keras_hub") is not None

# Seconds after which a refusal that should be quick has hung. Generous on purpose (a loaded
# 2-core machine); how fast things are refused is what benchmarks/ measures and prints.
HANG = 30.0

SLOW = pytest.mark.skipif(
    not os.environ.get("MODELSPEC_SLOW"),
    reason="heavy: set MODELSPEC_SLOW=1 (the benchmarks in benchmarks/ run all of them)",
)
"""Marks a test (or a parameter) that only runs with MODELSPEC_SLOW=1."""

APPLICATION_FAMILIES = {
    "VGG16": 32,
    "ResNet50": 32,
    "MobileNet": 32,
    "MobileNetV2": 32,
    "MobileNetV3Small": 32,  # operation nodes: x + 3.0, x * (1 / 6)
    "EfficientNetB0": 32,
    "ConvNeXtTiny": 32,  # nested Sequential models (blocks), LayerScale, operation nodes
    "Xception": 71,
    "InceptionV3": 75,
    "DenseNet121": 32,
    "NASNetMobile": 32,
    "InceptionResNetV2": 75,  # CustomScaleLayer
    "ResNet50V2": 32,
    "EfficientNetV2B0": 32,
}
"""One keras.applications model of each family, by its smallest input side."""

HEAVY_APPLICATIONS = frozenset({"NASNetMobile", "InceptionResNetV2", "ResNet50V2", "EfficientNetV2B0"})
"""Families whose model takes long enough to build and compare that they run only with MODELSPEC_SLOW."""


def application_objects() -> dict:
    """keras.applications' own layers, which keras.layers does not export: the custom objects they need."""
    from keras.src.applications.convnext import LayerScale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    return {"LayerScale": LayerScale, "CustomScaleLayer": CustomScaleLayer}


@functools.cache
def application(name: str, side: int | None = None):
    """The keras.applications model ``name`` (no weights), built once per test run.

    Callers must not change it (its weights included): later tests get the same object.
    """
    import keras

    side = side or APPLICATION_FAMILIES.get(name, 32)
    return getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3))


@pytest.fixture
def write_spec(tmp_path):
    """Write spec text to a file in a temporary folder; returns its path."""

    def write(text: str, name: str = "spec.yaml") -> pathlib.Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def random_inputs(model, batch: int = 3, free: int = 5, seed: int = 0):
    """Random data for every input of ``model`` (free axes get length ``free``)."""
    rng = np.random.default_rng(seed)
    data = []
    for tensor in model.inputs:
        shape = [batch] + [free if d is None else d for d in tensor.shape[1:]]
        if "int" in str(tensor.dtype):
            data.append(rng.integers(1, 50, size=shape).astype(str(tensor.dtype)))
        else:
            data.append(rng.normal(size=shape).astype("float32"))
    return data[0] if len(data) == 1 else data


def numpy(tensor):
    """A backend tensor (TensorFlow, JAX or PyTorch) as a numpy array."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(tensor))


def flat(outputs):
    """Model outputs (a tensor, list or dict) as a list of numpy arrays, in a fixed order."""
    if isinstance(outputs, dict):
        return [numpy(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [numpy(o) for o in outputs]
    return [numpy(outputs)]


def assert_same_network(built, expected, data=None):
    """The compiled model equals the hand-written one.

    Same model class, same layer classes in order, same parameter count, and
    the same outputs on random input once the hand-written model's weights are
    copied into the compiled one.
    """
    assert type(built) is type(expected), (type(built), type(expected))
    assert [type(layer).__name__ for layer in built.layers] == [
        type(layer).__name__ for layer in expected.layers
    ]
    assert built.count_params() == expected.count_params()
    assert [w.shape for w in built.get_weights()] == [w.shape for w in expected.get_weights()]
    built.set_weights(expected.get_weights())
    data = random_inputs(expected) if data is None else data
    got, want = flat(built(data, training=False)), flat(expected(data, training=False))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def keras_layer_shapes(operation, index: int):
    """The output shape(s) of the ``index``-th call of a Keras layer or operation."""
    shapes = [tuple(t.shape) for t in operation._inbound_nodes[index].output_tensors]
    return shapes[0] if len(shapes) == 1 else shapes


def _count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def _sublayers(keras, model) -> list:
    """A model's layers, a nested model's replaced by its own (inputs left out)."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        out += _sublayers(keras, layer) if isinstance(layer, keras.Model) else [layer]
    return out


def static_analysis_mismatches(model, graph, analysis) -> tuple[int, list[str]]:
    """Every node's static shape and parameters against the Keras model the spec was exported from.

    A node is found in ``model`` by name: a layer, or an operation (``keras.ops.add``, which
    Keras names ``add_3``); a node of a block instance (``INSTANCE-NODE``) in the model nested
    as ``INSTANCE``, by its name there, else by its place among the instance's nodes. A node
    sharing a layer is that layer's next call. Each node found must have the output shape(s)
    of its call and, owning a layer, its parameters (total and trainable); every Keras layer
    must be reached, and the totals must be the model's.

    Returns:
        (nodes compared, mismatches as messages). A node whose shape is unknown is not compared.
    """
    import keras

    from modelspec.analysis import UNKNOWN

    top = {op.name: op for op in model.operations}
    nested: dict[str, tuple[dict, list]] = {}  # instance -> (its layers by name, in order)
    calls: dict[str, int] = {}
    places: dict[str, int] = {}
    reached: set[int] = set()
    mismatches: list[str] = []
    compared = 0
    for node in graph.nodes:
        owner = node.share or node.name
        target = top.get(owner)
        instance, _, inner = owner.partition("-")
        if target is None and isinstance(top.get(instance), keras.Model):  # a block's node
            if instance not in nested:
                inside = _sublayers(keras, top[instance])
                nested[instance] = ({layer.name: layer for layer in inside}, inside)
            by_name, in_order = nested[instance]
            place = places[instance] = places.get(instance, -1) + (not node.share)
            target = by_name[inner] if inner in by_name else in_order[place]
        if target is None:
            if node.op is None:
                mismatches.append(f"{node.name}: no Keras layer of that name")
            continue  # an operation Keras names otherwise: its shape feeds the next layer's
        index = calls[owner] = calls.get(owner, -1) + 1
        reached.add(id(target))
        info = analysis.nodes[node.name]
        if info.shape is UNKNOWN:
            continue
        compared += 1
        expected = keras_layer_shapes(target, index)
        got = list(info.shape) if isinstance(info.shape, list) else info.shape
        if got != expected:
            mismatches.append(f"{node.name}: shape {got}, Keras {expected}")
        if node.share:
            continue
        is_layer = isinstance(target, keras.layers.Layer)
        params = target.count_params() if is_layer else 0
        trainable = _count(target.trainable_weights) if is_layer else 0
        if (info.params, info.trainable) != (params, trainable):
            mismatches.append(
                f"{node.name}: {info.params:,} parameters ({info.trainable:,} trainable), "
                f"Keras {params:,} ({trainable:,})"
            )
    mismatches += [
        f"Keras layer {layer.name}: no node" for layer in _sublayers(keras, model) if id(layer) not in reached
    ]
    total, trainable = model.count_params(), _count(model.trainable_weights)
    if analysis.complete and (analysis.trainable + analysis.non_trainable, analysis.trainable) != (
        total,
        trainable,
    ):
        mismatches.append(
            f"total: {analysis.trainable + analysis.non_trainable:,} parameters "
            f"({analysis.trainable:,} trainable), Keras {total:,} ({trainable:,})"
        )
    return compared, mismatches


def run_modelspec(args: list[str], cwd=None, memory: int = 1 << 30, timeout: float = 20):
    """``python -m modelspec ARGS`` in a subprocess under an address-space limit and a time limit.

    For hostile specs: a hang or a runaway allocation fails the test (``TimeoutExpired``, or an
    error exit) instead of taking the machine with it.
    """

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "modelspec", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=limit,
    )


SHARED_TOWER = """modelspec: 1
inputs:
  a: [8]
  b: [8]
blocks:
  tower:
    params: {units: required}
    layers:
      h: {type: Dense, units: "${units}", activation: relu}
      o: {type: Dense, units: 4}
  other:
    layers:
      - {type: Dense, units: 4}
layers:
  left: {block: tower, units: 16, inputs: a}
  right: {block: tower, share: left, inputs: b}
  merged: {type: Concatenate, inputs: [left, right]}
"""
"""A block instance and a second one sharing its layers (``share: left``), and a block nothing uses."""


# -- KerasHub backbones, each from its class with a tiny config (no presets, nothing downloaded) ------

_TEXT = dict(vocabulary_size=32, num_layers=1, hidden_dim=8, intermediate_dim=16)
_HEADS = dict(num_heads=2)
_GQA = dict(num_query_heads=2, num_key_value_heads=1)
_IMAGE = (16, 16, 3)

HUB_BACKBONES = {
    # name: (family, class name, constructor arguments)
    "Bert": ("encoder", "BertBackbone", {**_TEXT, **_HEADS, "max_sequence_length": 16}),
    "Roberta": ("encoder", "RobertaBackbone", {**_TEXT, **_HEADS, "max_sequence_length": 16}),
    "XLMRoberta": ("encoder", "XLMRobertaBackbone", {**_TEXT, **_HEADS, "max_sequence_length": 16}),
    "DistilBert": ("encoder", "DistilBertBackbone", {**_TEXT, **_HEADS, "max_sequence_length": 16}),
    "Albert": (
        "encoder",
        "AlbertBackbone",
        {**_TEXT, **_HEADS, "embedding_dim": 8, "max_sequence_length": 16},
    ),
    "DebertaV3": ("encoder", "DebertaV3Backbone", {**_TEXT, **_HEADS, "max_sequence_length": 16}),
    "Electra": (
        "encoder",
        "ElectraBackbone",
        {
            "vocab_size": 32,
            "num_layers": 1,
            "num_heads": 2,
            "hidden_dim": 8,
            "embedding_dim": 8,
            "intermediate_dim": 16,
            "max_sequence_length": 16,
        },
    ),
    "FNet": ("encoder", "FNetBackbone", {**_TEXT, "max_sequence_length": 16}),
    "GPT2": ("decoder", "GPT2Backbone", {**_TEXT, **_HEADS, "max_sequence_length": 16}),
    "GPTNeoX": (
        "decoder",
        "GPTNeoXBackbone",
        {**_TEXT, **_HEADS, "hidden_dim": 16, "max_sequence_length": 16},
    ),
    "OPT": ("decoder", "OPTBackbone", {**_TEXT, **_HEADS, "max_sequence_length": 16}),
    "Bloom": ("decoder", "BloomBackbone", {**_TEXT, **_HEADS}),
    "Falcon": ("decoder", "FalconBackbone", {**_TEXT, "num_attention_heads": 2}),
    "Llama": ("rotary decoder", "LlamaBackbone", {**_TEXT, **_GQA}),
    "Mistral": ("rotary decoder", "MistralBackbone", {**_TEXT, **_GQA}),
    "Gemma": ("rotary decoder", "GemmaBackbone", {**_TEXT, **_GQA, "head_dim": 4}),
    "Phi3": ("rotary decoder", "Phi3Backbone", {**_TEXT, **_GQA}),
    "Qwen": ("rotary decoder", "QwenBackbone", {**_TEXT, **_GQA}),
    "Bart": ("seq2seq", "BartBackbone", {**_TEXT, **_HEADS, "max_sequence_length": 16}),
    "T5": ("seq2seq", "T5Backbone", {**_TEXT, **_HEADS}),
    "Whisper": (
        "seq2seq",
        "WhisperBackbone",
        {**_TEXT, **_HEADS, "max_encoder_sequence_length": 16, "max_decoder_sequence_length": 16},
    ),
    "ViT": (
        "vision transformer",
        "ViTBackbone",
        {
            "image_shape": _IMAGE,
            "patch_size": 8,
            "num_layers": 1,
            "num_heads": 2,
            "hidden_dim": 8,
            "mlp_dim": 16,
        },
    ),
    "ResNet": (
        "convolutional",
        "ResNetBackbone",
        {
            "input_conv_filters": [64],
            "input_conv_kernel_sizes": [3],
            "stackwise_num_filters": [64],
            "stackwise_num_blocks": [1],
            "stackwise_num_strides": [1],
            "block_type": "basic_block",
            "image_shape": _IMAGE,
        },
    ),
    "VGG": (
        "convolutional",
        "VGGBackbone",
        {"stackwise_num_repeats": [1, 1], "stackwise_num_filters": [4, 8], "image_shape": _IMAGE},
    ),
    "DenseNet": (
        "convolutional",
        "DenseNetBackbone",
        {"stackwise_num_repeats": [1, 1], "image_shape": (32, 32, 3), "growth_rate": 4},
    ),
    "Xception": (
        "convolutional",
        "XceptionBackbone",
        {
            "stackwise_conv_filters": [[8, 8], [8, 8]],
            "stackwise_pooling": [False, False],
            "image_shape": (32, 32, 3),
        },
    ),
    "CSPNet": (
        "convolutional",
        "CSPNetBackbone",
        {
            "stem_filters": 8,
            "stem_kernel_size": 3,
            "stem_strides": 1,
            "stackwise_depth": [1],
            "stackwise_strides": [2],
            "stackwise_num_filters": [16],
            "block_type": "dark_block",
            "stage_type": "dark",
            "image_shape": _IMAGE,
        },
    ),
    "EfficientNet": (
        "convolutional",
        "EfficientNetBackbone",
        {
            "stackwise_kernel_sizes": [3, 3],
            "stackwise_num_repeats": [1, 1],
            "stackwise_input_filters": [8, 8],
            "stackwise_output_filters": [8, 16],
            "stackwise_expansion_ratios": [1, 2],
            "stackwise_squeeze_and_excite_ratios": [0.0, 0.25],
            "stackwise_strides": [1, 2],
            "stackwise_block_types": ["fused", "v1"],
            "width_coefficient": 1.0,
            "depth_coefficient": 1.0,
            "image_shape": _IMAGE,
        },
    ),
    "MobileNet": (
        "convolutional",
        "MobileNetBackbone",
        {
            "stackwise_expansion": [[1]],
            "stackwise_num_blocks": [1],
            "stackwise_num_filters": [[8]],
            "stackwise_kernel_size": [[3]],
            "stackwise_num_strides": [[1]],
            "stackwise_se_ratio": [[0.25]],
            "stackwise_activation": [["relu"]],
            "stackwise_padding": [[1]],
            "output_num_filters": 16,
            "depthwise_filters": 8,
            "depthwise_stride": 1,
            "depthwise_residual": False,
            "last_layer_filter": 16,
            "image_shape": _IMAGE,
            "input_num_filters": 8,
        },
    ),
    "SAM": ("segmentation", "SAMBackbone", lambda hub: _sam_parts(hub)),
}
"""Every KerasHub backbone the round trip is tried on: its family, its class in ``keras_hub.models``, a tiny config."""


HUB_DEEPER = {
    "ResNet": {"stackwise_num_blocks": [3]},  # residual units
    "DenseNet": {"stackwise_num_repeats": [3, 3]},  # dense layers
    "CSPNet": {"stackwise_depth": [3]},  # dark blocks
    "EfficientNet": {"stackwise_num_repeats": [3, 2]},
    "VGG": {"stackwise_num_repeats": [3, 3]},
}
"""Arguments over :data:`HUB_BACKBONES`' tiny configs that make a backbone repeat its units (for folding);
a backbone whose config takes ``num_layers`` repeats with ``num_layers=3``."""


def hub_deeper(name):
    """The arguments that make backbone ``name`` of :data:`HUB_BACKBONES` repeat a unit (empty when none do)."""
    config = HUB_BACKBONES[name][2]
    if name in HUB_DEEPER:
        return dict(HUB_DEEPER[name])
    return {"num_layers": 3} if isinstance(config, dict) and "num_layers" in config else {}


def _sam_parts(hub):
    """SAM's arguments are models and layers: a tiny ViTDet image encoder, prompt encoder and mask decoder."""
    return {
        "image_encoder": hub.models.ViTDetBackbone(
            hidden_size=8, num_layers=2, intermediate_dim=16, num_heads=2, global_attention_layer_indices=[1],
            patch_size=16, num_output_channels=8, window_size=2, image_shape=(32, 32, 3),
        ),
        "prompt_encoder": hub.layers.SAMPromptEncoder(
            hidden_size=8, image_embedding_size=(2, 2), input_image_size=(32, 32), mask_in_channels=16
        ),
        "mask_decoder": hub.layers.SAMMaskDecoder(
            num_layers=1, hidden_size=8, intermediate_dim=16, num_heads=2, embedding_dim=8,
            num_multimask_outputs=3, iou_head_depth=2, iou_head_hidden_dim=8,
        ),
    }  # fmt: skip


def hub_backbone(name, **overrides):
    """A tiny KerasHub backbone of :data:`HUB_BACKBONES`, made from its class (``overrides``: other arguments)."""
    import keras_hub

    _, class_name, config = HUB_BACKBONES[name]
    config = config(keras_hub) if callable(config) else config
    return getattr(keras_hub.models, class_name)(**{**config, **overrides})


def hub_inputs(model, seed=0):
    """Inputs for a backbone, by input name: token ids, masks of ones, segment ids of zeros, random features."""
    rng = np.random.default_rng(seed)
    data = {}
    for tensor in model.inputs:
        shape = [2] + [8 if d is None else d for d in tensor.shape[1:]]
        name = tensor.name
        if "int" not in str(tensor.dtype):
            data[name] = rng.uniform(size=shape).astype("float32")
        elif "mask" in name:
            data[name] = np.ones(shape, "int32")
        elif "segment" in name:
            data[name] = np.zeros(shape, "int32")
        else:
            data[name] = rng.integers(0, 16, size=shape).astype("int32")
    return data if len(data) > 1 else next(iter(data.values()))


def hub_round_trip(model):
    """A backbone through export -> YAML -> load -> build; the rebuilt model, its YAML and the seconds taken.

    Raises:
        modelspec.SpecError: What export or build refuses, located.
    """
    import time

    import modelspec

    start = time.perf_counter()
    text = modelspec.from_keras(model).to_yaml()
    exported = time.perf_counter()
    built = modelspec.build(modelspec.loads(text))
    return built, text, exported - start, time.perf_counter() - exported


def assert_same_backbone(built, model):
    """Same parameter count, the same layer classes, and outputs within 1e-5 once the weights are copied by path."""
    import modelspec

    assert built.count_params() == model.count_params()

    import keras

    def classes(m):  # in any order (a library model's may not be its graph's); nested models by their layers
        return sorted(
            f"{type(layer).__module__}.{type(layer).__qualname__}" for layer in _sublayers(keras, m)
        )

    assert classes(built) == classes(model)
    modelspec.copy_weights(model, built)
    data = hub_inputs(model)
    got, want = flat(built(data, training=False)), flat(model(data, training=False))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert float(np.max(np.abs(g - w))) <= 1e-5
