"""Tests for asyncflow.processors.aggregators and OneTaskProcessorNode, called in-process."""

from __future__ import annotations

import pickle

import pytest

from asyncflow.core.errors import NodeConfigError
from asyncflow.processors import (
    CountAggregator,
    MaxAggregator,
    MinAggregator,
    MultiplicationAggregator,
    OneTaskProcessorNode,
    SumAggregator,
)
from asyncflow.producers import IntProducer

AGGREGATORS = [SumAggregator, MultiplicationAggregator, CountAggregator, MaxAggregator, MinAggregator]


class RunningConcat(OneTaskProcessorNode):
    """A user-defined one-task processor."""

    def process(self, *inputs: object) -> object:
        return inputs


def run(node: OneTaskProcessorNode, items: list[object]) -> list[object]:
    node.open()
    try:
        return [node.process(item) for item in items]
    finally:
        node.close()


@pytest.mark.parametrize(
    ("cls", "items", "expected"),
    [
        (SumAggregator, [1, 2, 3, 4], [1, 3, 6, 10]),
        (SumAggregator, [0.5, -1], [0.5, -0.5]),
        (MultiplicationAggregator, [2, 3, 4], [2, 6, 24]),
        (MultiplicationAggregator, [5, 0, 7], [5, 0, 0]),
        (CountAggregator, ["a", None, 3.5, "d"], [1, 2, 3, 4]),
        (MaxAggregator, [3, 1, 4, 1, 5, 2], [3, 3, 4, 4, 5, 5]),
        (MaxAggregator, [-5, -7, -2], [-5, -5, -2]),
        (MaxAggregator, ["b", "a", "c"], ["b", "b", "c"]),
        (MinAggregator, [3, 1, 4, 0, 5], [3, 1, 1, 0, 0]),
        (MinAggregator, [10, 20], [10, 10]),
    ],
)
def test_aggregator_running_values(
    cls: type[OneTaskProcessorNode], items: list[object], expected: list[object]
) -> None:
    assert run(cls(), items) == expected


@pytest.mark.parametrize("cls", AGGREGATORS)
def test_aggregator_resets_on_open(cls: type[OneTaskProcessorNode]) -> None:
    node = cls()
    first = run(node, [4, 2, 6])
    assert run(node, [4, 2, 6]) == first


@pytest.mark.parametrize("cls", AGGREGATORS)
def test_aggregator_works_without_open_from_fresh_state(cls: type[OneTaskProcessorNode]) -> None:
    node = cls()
    fresh = run(cls(), [3])
    assert [node.process(3)] == fresh


def test_sum_keeps_its_value_when_an_item_fails() -> None:
    node = SumAggregator()
    node.open()
    assert node.process(2) == 2
    with pytest.raises(TypeError):
        node.process("x")
    assert node.process(3) == 5


@pytest.mark.parametrize("cls", AGGREGATORS)
def test_aggregator_runs_as_one_task(cls: type[OneTaskProcessorNode]) -> None:
    node = cls()
    assert node.nb_tasks == 1
    with pytest.raises(NodeConfigError, match=r"one-task processor.*nb_tasks must stay 1, got 4"):
        node.nb_tasks = 4
    assert node.nb_tasks == 1


@pytest.mark.parametrize("cls", AGGREGATORS)
def test_aggregator_takes_no_nb_tasks(cls: type[OneTaskProcessorNode]) -> None:
    with pytest.raises(TypeError):
        cls(nb_tasks=2)  # type: ignore[call-arg]


def test_aggregator_rejects_several_parents() -> None:
    node = SumAggregator(name="total")
    with pytest.raises(NodeConfigError, match=r"SumAggregator 'total' aggregates one stream.*got 2"):
        node(IntProducer(0, 1), IntProducer(0, 1))
    assert not node.is_wired


def test_aggregator_accepts_one_parent() -> None:
    parent = IntProducer(0, 1)
    node = CountAggregator()(parent)
    assert node.parents == (parent,)


def test_aggregator_process_with_several_inputs_says_why() -> None:
    with pytest.raises(TypeError, match=r"MaxAggregator 'm': process\(\) takes one input, got 2"):
        MaxAggregator(name="m").process(1, 2)


@pytest.mark.parametrize("cls", AGGREGATORS)
def test_aggregator_pickles_with_its_configuration(cls: type[OneTaskProcessorNode]) -> None:
    node = cls(name="agg", on_error="skip")
    copy = pickle.loads(pickle.dumps(node))
    assert type(copy) is cls
    assert (copy.name, copy.on_error, copy.nb_tasks) == ("agg", "skip", 1)
    assert run(copy, [2, 3]) == run(cls(), [2, 3])


def test_one_task_processor_node_subclass() -> None:
    node = RunningConcat("gpu", name="rc")
    assert (node.nb_tasks, node.device_type, node.name) == (1, "gpu", "rc")
    assert node.process(1, 2) == (1, 2)
    copy = pickle.loads(pickle.dumps(node))
    assert (copy.nb_tasks, copy.device_type, copy.name) == (1, "gpu", "rc")
