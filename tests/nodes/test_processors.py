"""Tests for asyncflow.processors.basic: identity, function, joiner processors, called in-process."""

from __future__ import annotations

import asyncio
import inspect
import pickle
import time

import pytest

from asyncflow.core.errors import NodeConfigError
from asyncflow.processors import (
    FunctionProcessor,
    FunctionProcessorNode,
    IdentityProcessor,
    JoinerProcessor,
)
from asyncflow.producers import IntProducer


def add(a: int, b: int = 0) -> int:
    return a + b


def square(x: int) -> int:
    return x * x


async def async_double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    return calls


# -- IdentityProcessor --------------------------------------------------------


def test_identity_returns_its_input_unchanged() -> None:
    node = IdentityProcessor()
    item = {"frame": [1, 2, 3]}
    assert node.process(item) is item


def test_identity_with_several_inputs_returns_their_tuple() -> None:
    assert IdentityProcessor().process(1, "a", None) == (1, "a", None)


def test_identity_keeps_videoflow_positional_fps_and_sleeps_per_item(sleeps: list[float]) -> None:
    node = IdentityProcessor(20)
    assert node.nb_tasks == 1
    assert node.process(1) == 1
    assert node.process(2) == 2
    assert sleeps == [0.05, 0.05]


def test_identity_without_fps_does_not_sleep(sleeps: list[float]) -> None:
    IdentityProcessor().process(1)
    assert sleeps == []


def test_identity_passes_processor_options_on() -> None:
    node = IdentityProcessor(nb_tasks=3, device_type="gpu", name="b", ordered=False, on_error="skip")
    assert (node.nb_tasks, node.device_type, node.name, node.ordered, node.on_error) == (
        3, "gpu", "b", False, "skip",
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fps": "10"}, r"IdentityProcessor 'b': fps must be a number"),
        ({"nb_tasks": 0}, r"IdentityProcessor 'b': nb_tasks must be a positive int"),
        ({"on_error": "ignore"}, r"on_error must be 'raise' or 'skip'"),
    ],
)
def test_identity_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(NodeConfigError, match=match):
        IdentityProcessor(**kwargs, name="b")  # type: ignore[arg-type]


def test_identity_pickles_with_its_configuration() -> None:
    node = IdentityProcessor(5, nb_tasks=2, name="b", ordered=False)
    copy = pickle.loads(pickle.dumps(node))
    assert (copy.fps, copy.nb_tasks, copy.name, copy.ordered) == (5, 2, "b", False)


def test_identity_pickle_drops_graph_links() -> None:
    node = IdentityProcessor(name="b")(IntProducer(0, 1))
    copy = pickle.loads(pickle.dumps(node))
    assert node.parents != ()
    assert copy.parents == ()


# -- FunctionProcessor ----------------------------------------------------------


def test_function_processor_applies_the_function() -> None:
    assert FunctionProcessor(square).process(7) == 49


def test_function_processor_passes_one_input_per_parent_in_order() -> None:
    node = FunctionProcessor(add)
    assert node.process(3, 4) == 7
    assert FunctionProcessor(divmod).process(7, 2) == (3, 1)


def test_function_processor_with_async_function_returns_awaitable_result() -> None:
    result = FunctionProcessor(async_double).process(21)
    assert inspect.iscoroutine(result)
    assert asyncio.run(result) == 42


def test_function_processor_propagates_the_function_error() -> None:
    with pytest.raises(ZeroDivisionError):
        FunctionProcessor(divmod).process(1, 0)


def test_function_processor_rejects_non_callable() -> None:
    with pytest.raises(NodeConfigError, match=r"FunctionProcessor 'f': processor_function must be callable"):
        FunctionProcessor(42, name="f")  # type: ignore[arg-type]


def test_function_processor_positional_options() -> None:
    node = FunctionProcessor(square, 4, "gpu")
    assert (node.nb_tasks, node.device_type) == (4, "gpu")


def test_function_processor_pickles_with_its_function() -> None:
    node = FunctionProcessor(square, nb_tasks=2, name="sq", on_error="skip")
    copy = pickle.loads(pickle.dumps(node))
    assert copy.processor_function is square
    assert (copy.nb_tasks, copy.name, copy.on_error) == (2, "sq", "skip")
    assert copy.process(5) == 25


def test_function_processor_node_keeps_videoflow_argument_names() -> None:
    node = FunctionProcessorNode(square, nb_proc=3, device="gpu")
    assert isinstance(node, FunctionProcessor)
    assert (node.nb_tasks, node.device_type) == (3, "gpu")
    assert node.process(3) == 9
    assert pickle.loads(pickle.dumps(node)).nb_tasks == 3


# -- JoinerProcessor ----------------------------------------------------------


def test_joiner_returns_tuple_of_inputs_in_order() -> None:
    node = JoinerProcessor()
    assert node.process(1, "b", [3]) == (1, "b", [3])
    assert node.process(1) == (1,)


def test_joiner_fps_sleeps_per_item(sleeps: list[float]) -> None:
    JoinerProcessor(fps=2).process(1, 2)
    assert sleeps == [0.5]


def test_joiner_pickles_with_its_configuration() -> None:
    node = JoinerProcessor(nb_tasks=2, name="j")
    copy = pickle.loads(pickle.dumps(node))
    assert (copy.nb_tasks, copy.name) == (2, "j")
    assert copy.process(1, 2) == (1, 2)
