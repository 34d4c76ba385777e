"""Drawings: DOT and Mermaid written by modelspec, checked by structure and rendered by Graphviz."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import SPECS

from modelspec.analysis.draw import picture, to_dot, to_mermaid
from modelspec.api import load_checked
from modelspec.cli import main

HAS_DOT = shutil.which("dot") is not None


def drawn(name: str, **kw):
    graph, analysis = load_checked(SPECS / f"{name}.yaml").model()
    return graph, picture(graph, analysis, **kw)


def dot_edges(text: str) -> list[tuple[str, str, str]]:
    return re.findall(r'^  "([^"]+)" -> "([^"]+)"( \[.*\])?;$', text, flags=re.MULTILINE)


def test_shared_layers_are_dashed_and_inputs_outputs_stand_out():
    _, p = drawn("siamese")
    text = to_dot(p)
    assert (
        '"right_tower" [label="right_tower\\nshares left_tower\\n(None, 64)", style="rounded,dashed"];'
        in text
    )
    assert ("left_tower", "right_tower", ' [label="shares", style=dashed]') in dot_edges(text)
    assert '"left" [label="left\\nInput\\n(None, 28, 28)", shape=oval' in text
    assert 'fillcolor="#f8cecc"' in text.split('"same" [', 1)[1].split("\n", 1)[0]  # the output
    mermaid = to_mermaid(p)
    assert "left_tower -.->|shares| right_tower" in mermaid
    assert "style right_tower stroke-dasharray: 5 5" in mermaid


def test_keyword_calls_and_picked_outputs_label_their_edges():
    _, p = drawn("attention")
    edges = dot_edges(to_dot(p))
    assert ("queries", "attend", ' [label="query"]') in edges and (
        "context",
        "attend",
        ' [label="key"]',
    ) in edges
    assert ("attend", "mixed", ' [label="[0]"]') in edges
    _, p = drawn("lstm_state")
    mermaid = to_mermaid(p)
    assert re.search(r"encoder -->\|initial_state\| decoder", mermaid)


def test_blocks_are_clusters_and_repeats_fold_into_one_box():
    graph, p = drawn("resnet50")
    text = to_dot(p)
    assert text.count("subgraph") == 5  # conv1 and the four stages
    assert (
        'label="conv2-block1 .. conv2-block3\\nbottleneck x3\\n(None, 56, 56, 256)\\n220,032 params"' in text
    )
    assert len(p.boxes) == 1 + 5 + 3 + 4  # input, plain layers, conv1's three, four folded stages
    _, opened = drawn("resnet50", expand=True)
    assert len(opened.boxes) == 1 + len(graph.nodes)
    assert to_dot(opened).count("subgraph") == 1 + 4 + 16 + 16 * 3 + 4  # conv1, stages, bottlenecks, conv_bns
    edges = dot_edges(text)
    assert ("pool1", "fold:conv2/conv2-0", "") in edges


@pytest.mark.parametrize("suffix", [".dot", ".mmd"])
def test_draw_command_writes_text(suffix, tmp_path, capsys):
    out = tmp_path / f"m{suffix}"
    assert main(["draw", str(SPECS / "unet.yaml"), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("digraph" if suffix == ".dot" else "flowchart TB")
    assert "down1: down" in text and "up3: up" in text


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_draw_renders_with_graphviz(suffix, magic, tmp_path):
    out = tmp_path / f"m{suffix}"
    assert main(["draw", str(SPECS / "resnet50.yaml"), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    check = subprocess.run(
        ["dot", "-Tcanon"], input=to_dot(drawn("siamese")[1]), text=True, capture_output=True
    )
    assert check.returncode == 0, check.stderr  # the DOT is valid for Graphviz itself


def test_svg_without_graphviz_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    out = tmp_path / "m.svg"
    assert main(["draw", str(SPECS / "iris.yaml"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "needs Graphviz's `dot` program" in err and "apt-get install graphviz" in err and not out.exists()
    assert main(["draw", str(SPECS / "iris.yaml"), "-o", str(tmp_path / "m.pdf")]) == 2


def test_unnamed_layers_are_labelled_as_keras_names_them():
    _, p = drawn("iris")
    mermaid = to_mermaid(p)
    assert '["dense<br/>Dense<br/>(None, 16)<br/>80 params"]' in mermaid
    assert '["dense_1<br/>Dense<br/>(None, 16)<br/>272 params"]' in mermaid
    assert "#" not in "".join(line for line in mermaid.splitlines() if "[" in line)
