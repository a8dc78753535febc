"""A BaseException raised by a node (KeyboardInterrupt, SystemExit, GeneratorExit) fails the flow
promptly with a NodeFailedError naming the node, like any exception; it never hangs run()."""

from __future__ import annotations

import asyncio

import pytest

from asyncflow.consumers import VoidConsumer
from asyncflow.core import Flow, NodeFailedError
from tests.helpers import CountProducer
from tests.helpers_raise import RaisingConsumer, RaisingProcessor, RaisingProducer

KINDS = ["KeyboardInterrupt", "SystemExit", "GeneratorExit"]


async def _fails(flow: Flow, node: str) -> NodeFailedError:
    with pytest.raises(NodeFailedError, match=node) as info:
        await asyncio.wait_for(flow.run(), 30)
    return info.value


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["open", "process", "close"])
async def test_processor(kind: str, where: str) -> None:
    a = CountProducer(10)
    b = RaisingProcessor(kind, where, name="raiser")(a)
    error = await _fails(Flow([a], [VoidConsumer()(b)]), "raiser")
    assert kind in str(error) and f"in {where}()" in str(error)
    assert isinstance(error.__cause__, getattr(__builtins__, kind, BaseException)) or kind in repr(error.__cause__)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["open", "next", "close"])
async def test_producer(kind: str, where: str) -> None:
    a = RaisingProducer(kind, where, name="raiser")
    error = await _fails(Flow([a], [VoidConsumer()(a)]), "raiser")
    assert kind in str(error)


@pytest.mark.parametrize("kind", KINDS)
async def test_async_methods(kind: str) -> None:
    a = RaisingProducer(kind, "next", asynchronous=True, name="araiser")
    await _fails(Flow([a], [VoidConsumer()(a)]), "araiser")
    b = CountProducer(10)
    c = RaisingProcessor(kind, "process", asynchronous=True, name="praiser")(b)
    await _fails(Flow([b], [VoidConsumer()(c)]), "praiser")


@pytest.mark.parametrize("kind", KINDS)
async def test_consumer_and_nb_tasks(kind: str) -> None:
    a = CountProducer(10)
    await _fails(Flow([a], [RaisingConsumer(kind, name="sink")(a)]), "sink")
    b = CountProducer(10)
    c = RaisingProcessor(kind, "process", nb_tasks=2, name="pair")(b)
    await _fails(Flow([b], [VoidConsumer()(c)]), "pair")
