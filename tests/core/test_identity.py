"""Nodes are compared by identity, whatever their class says about equality."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from asyncflow.core import ConsumerNode, Flow, GraphError, ProcessorNode, ProducerNode


@dataclass
class DataProducer(ProducerNode):
    """A dataclass node: unhashable, and equal to any other with the same fields."""

    limit: int = 3

    def __post_init__(self) -> None:
        super().__init__()

    def next(self) -> int:
        raise StopIteration


@dataclass
class DataProcessor(ProcessorNode):
    factor: int = 2

    def __post_init__(self) -> None:
        super().__init__()

    def process(self, x: int) -> int:
        return x * self.factor


class Sink(ConsumerNode):
    def consume(self, *items: Any) -> None:
        pass


def test_dataclass_nodes_build_a_flow() -> None:
    a = DataProducer()
    b = DataProcessor()(a)
    c = Sink()(b)
    flow = Flow([a], [c])
    assert [n.name for n in flow.nodes] == [a.name, b.name, c.name]


def test_equal_dataclass_nodes_are_still_distinct() -> None:
    a1, a2 = DataProducer(), DataProducer()
    assert a1 == a2  # the dataclass says so
    b = DataProcessor()(a1)
    c = DataProcessor()(a2)
    flow = Flow([a1, a2], [Sink()(b), Sink()(c)])
    assert len(flow.nodes) == 6


class Named(ProcessorNode):
    def process(self, x: Any) -> Any:
        return x


def test_a_node_named_like_a_worker_is_rejected() -> None:
    a = DataProducer()
    b = Named(nb_tasks=2, name="b")(a)
    c = Named(name="b[1]")(a)
    with pytest.raises(GraphError, match=r"task named 'b\[1\]'"):
        Flow([a], [Sink()(b), Sink()(c)])
