"""Property-based tests: randomly broken specs end in a model or a located SpecError, never anything else.

The valid example specs are mutated at random, as text (lines deleted,
duplicated, swapped or re-indented, characters inserted or deleted, words
replaced) and as data re-dumped to YAML (keys deleted, renamed or misspelt,
values retyped or misspelt, entries duplicated). Every run must end in a
valid spec (or a built model), or in a :class:`modelspec.SpecError` whose
every problem names the file and a line in it. The load/check path (no
Keras) runs many examples; the build path, which is slow, runs a few.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import tempfile
import uuid

import pytest
import yaml
from conftest import SPECS
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import modelspec
from modelspec import SpecError
from modelspec.cli import main

SPEC_TEXTS = {p.stem: p.read_text(encoding="utf-8") for p in sorted(SPECS.glob("*.yaml"))}
SMALL = ["seed_functional", "seed_sequential", "seed_sequential_unbuilt", "iris", "siamese", "lstm_state"]
"""Specs that build in well under a second: the build path mutates these."""
SOURCE = "mutant.yaml"

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUILD = settings(SLOW, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
"""Most mutants fail validation, which the tests above cover; the build test filters them out."""

YAML_CHARACTERS = list(":[]{},-#&*!|>'\"\t \n?%@`~\\") + list("aZ0._")
WORDS = [
    "Dense", "units", "inputs", "layers", "outputs", "type", "share", "call", "name", "null", "~",
    "true", "no", "1e9", "-1", "0", "2.5", ".nan", "x[0]", "x[9]", "a b", "&a", "*a", "<<", "{}", "[]",
    "relu", "softmax", "Lambda", "Add", "LSTM", "os.system", "!!str", "!!python/name:os.system", "'q'",
]  # fmt: skip
INTERESTING = [
    None, True, False, 0, -1, 1, 3, 2**40, -(2**63), 0.5, -0.5, 1e308, float("inf"), float("nan"),
    "", "relu", "softmax", "Dense", "Lambda", "x", "x[0]", "x[7]", "a b", "keras.layers.Dense",
    [], {}, [1, 2], [None], {"type": "Dense"}, {"type": "Dense", "units": -2}, {"a": 1}, ["x", "y"],
]  # fmt: skip


# -- the property --------------------------------------------------------------------------


def assert_located(error: SpecError, text: str) -> None:
    """Every problem names the file and a line (and column) that exists in ``text``."""
    assert error.problems, "a SpecError without problems"
    lines = text.count("\n") + 1
    for p in error.problems:
        assert p.file == SOURCE, p
        assert p.line is not None and 1 <= p.line <= lines, (p, lines)
        assert p.column is not None and p.column >= 1, p
        assert p.message and p.severity in ("error", "warning"), p
        p.format()  # formatting (the excerpt and its caret) never fails
    assert error.errors, "a SpecError with warnings only"
    error.report()


def load_or_located(text: str) -> modelspec.ModelSpec | None:
    """The valid spec (checked through the graph stage), or None after checking the error."""
    try:
        spec = modelspec.loads(text, source=SOURCE)
        graph = modelspec.check(spec)
    except SpecError as e:
        assert_located(e, text)
        return None
    for warning in graph.warnings:
        assert warning.severity == "warning" and warning.line is not None, warning
    return spec


# -- mutations ------------------------------------------------------------------------------


def misspell(draw, word: str) -> str:
    """A typo: a character dropped, doubled, swapped or changed in case."""
    if not word:
        return draw(st.sampled_from(["x", " ", "-"]))
    i = draw(st.integers(0, len(word) - 1))
    op = draw(st.sampled_from(["drop", "double", "swap", "case"]))
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "double":
        return word[: i + 1] + word[i:]
    if op == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word.swapcase()


@st.composite
def text_mutants(draw, names=tuple(SPEC_TEXTS)) -> str:
    """An example spec with one to three edits made to its text."""
    lines = SPEC_TEXTS[draw(st.sampled_from(sorted(names)))].split("\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(
            st.sampled_from(["delete", "duplicate", "swap", "insert", "remove", "indent", "word", "typo"])
        )
        line = lines[i]
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":  # duplicate keys, duplicate entries
            lines.insert(i, line)
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            k = draw(st.integers(0, len(line)))
            lines[i] = line[:k] + draw(st.sampled_from(YAML_CHARACTERS)) + line[k:]
        elif op == "remove" and line:
            k = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:k] + line[k + 1 :]
        elif op == "indent":
            shift = draw(st.integers(-2, 2))
            lines[i] = " " * shift + line if shift > 0 else line[-shift:]
        elif op in ("word", "typo"):
            words = line.replace(",", " ").replace(":", " ").replace("{", " ").replace("}", " ").split()
            if words:
                word = draw(st.sampled_from(words))
                new = draw(st.sampled_from(WORDS)) if op == "word" else misspell(draw, word)
                lines[i] = line.replace(word, new, 1)
    return "\n".join(lines)


def _places(data, path=()):
    """Every (path) in a document, the root excluded."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*path, k)
            yield from _places(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield (*path, i)
            yield from _places(v, (*path, i))


values = st.one_of(
    st.sampled_from(INTERESTING),
    st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.lists(st.one_of(st.integers(-2, 9), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=6), st.integers(), max_size=2),
)


@st.composite
def data_mutants(draw, names=tuple(SPEC_TEXTS)) -> str:
    """An example spec with one to three edits made to its data, dumped back to YAML."""
    data = yaml.safe_load(SPEC_TEXTS[draw(st.sampled_from(sorted(names)))])
    for _ in range(draw(st.integers(1, 3))):
        places = list(_places(data))
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        op = draw(st.sampled_from(["delete", "retype", "rename", "misspell", "duplicate"]))
        if op == "delete":
            del parent[last]
        elif op == "retype":
            parent[last] = copy.deepcopy(draw(values))
        elif op == "rename" and isinstance(parent, dict):
            new = misspell(draw, str(last)) if draw(st.booleans()) else draw(st.sampled_from(WORDS))
            parent[new] = parent.pop(last)
        elif op == "misspell" and isinstance(parent[last], str):
            parent[last] = misspell(draw, parent[last])
        elif op == "duplicate":
            value = copy.deepcopy(parent[last])
            if isinstance(parent, list):
                parent.insert(last, value)
            else:
                parent[f"{last}_copy" if draw(st.booleans()) else str(last).upper()] = value
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans()))


@st.composite
def argument_mutants(draw, names=tuple(SMALL)) -> str:
    """A small example spec with a layer argument or an input shape changed: what Keras alone refuses."""
    data = yaml.safe_load(SPEC_TEXTS[draw(st.sampled_from(sorted(names)))])
    layers = data["layers"]
    entries = list(layers.values()) if isinstance(layers, dict) else layers
    for _ in range(draw(st.integers(1, 2))):
        if data.get("inputs") and draw(st.booleans()):
            name = draw(st.sampled_from(sorted(data["inputs"])))
            data["inputs"][name] = {
                "shape": draw(st.lists(st.one_of(st.none(), st.integers(1, 6)), max_size=4))
            }
            continue
        entry = draw(st.sampled_from(entries))
        arguments = sorted(k for k in entry if k not in ("type", "name", "inputs", "share", "call"))
        if arguments:
            key = draw(st.sampled_from(arguments))
            entry[key] = draw(st.one_of(st.integers(-3, 5), st.floats(-2, 2), st.sampled_from(INTERESTING)))
    return yaml.safe_dump(data, sort_keys=False)


# -- load and check (no Keras): many examples ------------------------------------------------


@FAST
@given(text_mutants())
def test_text_mutants_load_or_fail_located(text):
    load_or_located(text)


@FAST
@given(data_mutants())
def test_data_mutants_load_or_fail_located(text):
    spec = load_or_located(text)
    if spec is not None:  # a valid spec writes back to an equal one
        assert modelspec.loads(spec.to_yaml()) == spec


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(text_mutants(), data_mutants()))
def test_cli_validate_exits_0_or_1_with_located_messages(text):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, SOURCE)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", path])
    stderr = err.getvalue()
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert code in (0, 1), stderr
    if code == 1:
        assert stderr.startswith(f"{path}:"), stderr
        assert stderr.rstrip().splitlines()[-1].endswith(("error", "errors")), stderr
    else:
        assert f"{path}: ok" in out.getvalue()


# -- build (Keras): a few examples --------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    """Keras, imported once before Hypothesis runs (TensorFlow's import changes the recursion limit)."""
    import keras

    return keras


@BUILD
@given(text=st.one_of(argument_mutants(), text_mutants(SMALL), data_mutants(SMALL)))
def test_mutants_build_or_fail_located(keras, text):
    spec = load_or_located(text)
    assume(spec is not None)  # invalid specs are covered above; only the Keras stage is new here
    try:
        model = modelspec.build(spec)
    except SpecError as e:
        assert_located(e, text)
    else:
        assert isinstance(model, keras.Model)


# -- nothing executed -----------------------------------------------------------------------------

_MARKERS = tempfile.mkdtemp(prefix="modelspec-fuzz-")
TAGS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    "!!python/object/apply:os.system [touch {marker}]",
    "!!python/object/new:os.system [touch {marker}]",
    "!!python/object/apply:subprocess.check_call [[touch, {marker}]]",
    "!!python/name:os.system",
    "!!python/module:os",
    '!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {marker}"]',
    '&evil !!python/object/apply:os.system ["touch {marker}"]',
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(SPEC_TEXTS)),
    tag=st.sampled_from(TAGS),
    where=st.integers(0, 10_000),
    flow=st.booleans(),
)
def test_python_tags_never_run(name, tag, where, flow):
    marker = os.path.join(_MARKERS, uuid.uuid4().hex)
    tagged = tag.format(marker=marker)
    lines = SPEC_TEXTS[name].split("\n")
    # Replace the value of one `key: value` line, or add a new key with the tagged value.
    candidates = [i for i, line in enumerate(lines) if ": " in line and not line.lstrip().startswith("#")]
    i = candidates[where % len(candidates)]
    if flow:
        key, _, _ = lines[i].partition(": ")
        lines[i] = f"{key}: {tagged}"
    else:
        lines.insert(0, f"evil: {tagged}")
    text = "\n".join(lines)
    with pytest.raises(SpecError) as info:
        modelspec.loads(text, source=SOURCE)
    assert_located(info.value, text)
    assert any("tag" in p.message or "invalid YAML" in p.message for p in info.value.problems)
    with tempfile.TemporaryDirectory() as folder:  # the build path reads files the same way
        path = os.path.join(folder, SOURCE)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        with pytest.raises(SpecError):
            modelspec.build(path)
    assert not os.path.exists(marker)


def test_the_markers_folder_stayed_empty():
    assert os.listdir(_MARKERS) == []
