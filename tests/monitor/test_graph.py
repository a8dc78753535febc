"""to_dot / to_mermaid / render: the graph as text and as files."""

from __future__ import annotations

import logging
import types
from pathlib import Path
from typing import Any

import pytest

from asyncflow.consumers import VoidConsumer
from asyncflow.core import Flow
from asyncflow.monitor import graph as graph_module
from asyncflow.monitor import render, to_dot, to_mermaid
from tests.helpers import Add, CountProducer, Pair


def diamond() -> Flow:
    """numbers -> left, right (x2, gpu) -> pair(right, left) -> sink."""
    a = CountProducer(3, name="numbers")
    left = Add(1, name="left")(a)
    right = Add(2, name="right", nb_tasks=2, device_type="gpu")(a)
    pair = Pair(name="pair")(right, left)  # parent order: right first
    return Flow([a], [VoidConsumer(name="sink")(pair)])


def test_dot_has_every_node_labelled_and_every_edge_in_parent_order() -> None:
    dot = to_dot(diamond())
    assert dot.startswith("digraph asyncflow {") and dot.rstrip().endswith("}")
    assert 'n0 [label="numbers\\nCountProducer", shape=invhouse' in dot
    assert 'n1 [label="left\\nAdd", shape=box' in dot
    assert 'n2 [label="right\\nAdd \u00d72 · gpu", shape=box' in dot
    assert 'n4 [label="sink\\nVoidConsumer", shape=house' in dot
    edges = [line.strip() for line in dot.splitlines() if "->" in line]
    assert edges == [
        "n0 -> n1;",
        "n0 -> n2;",
        'n2 -> n3 [label="0"];',  # right is pair's first argument
        'n1 -> n3 [label="1"];',
        "n3 -> n4;",
    ]


def test_dot_escapes_quotes_in_names() -> None:
    a = CountProducer(1, name='say "hi"')
    dot = to_dot(Flow([a], [VoidConsumer(name="sink")(a)]))
    assert 'label="say \\"hi\\"\\nCountProducer"' in dot


def test_mermaid_has_shapes_labels_and_edges() -> None:
    text = to_mermaid(diamond())
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "flowchart TD"
    assert 'n0(["numbers<br/>CountProducer"]):::producer' in lines
    assert 'n2["right<br/>Add \u00d72 · gpu"]:::processor' in lines
    assert 'n4[["sink<br/>VoidConsumer"]]:::consumer' in lines
    assert [line for line in lines if "-->" in line] == [
        "n0 --> n1",
        "n0 --> n2",
        "n2 -->|0| n3",
        "n1 -->|1| n3",
        "n3 --> n4",
    ]


def no_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_module, "_graphviz_module", lambda: None)
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)


def test_render_writes_mermaid_when_graphviz_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    no_graphviz(monkeypatch)
    flow = diamond()
    with caplog.at_level(logging.WARNING, logger="asyncflow"):
        written = render(flow, tmp_path / "graph.svg")
    assert written == tmp_path / "graph.mmd"
    assert written.read_text() == to_mermaid(flow)
    assert not (tmp_path / "graph.svg").exists()
    assert "graphviz is not installed" in caplog.text and "graph.mmd" in caplog.text


def test_render_writes_text_formats_by_suffix(tmp_path: Path) -> None:
    flow = diamond()
    assert render(flow, tmp_path / "g.dot").read_text() == to_dot(flow)
    assert render(flow, tmp_path / "g.mmd").read_text() == to_mermaid(flow)
    with pytest.raises(ValueError, match="cannot tell the format"):
        render(flow, tmp_path / "g.txt")


def test_render_draws_through_the_graphviz_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    class Source:
        def __init__(self, source: str) -> None:
            self.source = source

        def pipe(self, format: str) -> bytes:
            calls.append((self.source, format))
            return b"<svg/>"

    fake: Any = types.SimpleNamespace(Source=Source, ExecutableNotFound=RuntimeError)
    monkeypatch.setattr(graph_module, "_graphviz_module", lambda: fake)
    flow = diamond()
    written = render(flow, tmp_path / "graph.svg")
    assert written == tmp_path / "graph.svg"
    assert written.read_bytes() == b"<svg/>"
    assert calls == [(to_dot(flow), "svg")]
