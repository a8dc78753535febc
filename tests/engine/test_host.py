"""The host application feeds a flow and reads its results, with backpressure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from asyncflow.core import Flow
from asyncflow.core.host import FeedProducer, ResultsConsumer
from tests.helpers import Add, BumpN, CountProducer, Recorder, recorded


async def test_results_come_back_to_the_host_in_order() -> None:
    a = CountProducer(500)
    b = Add(1, nb_tasks=2)(a)
    c = ResultsConsumer()(b)
    flow = Flow([a], [c])
    run = asyncio.create_task(flow.run())
    got = [item async for item in flow.results(c)]
    await asyncio.wait_for(run, 30)
    assert got == list(range(1, 501))


async def test_host_feeds_a_flow_and_ends_it(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    feeder = FeedProducer()
    b = Add(10)(feeder)
    c = Recorder(out)(b)
    flow = Flow([feeder], [c])
    run = asyncio.create_task(flow.run())
    for i in range(100):
        await feeder.put(i)
    await feeder.end()
    await asyncio.wait_for(run, 30)
    assert recorded(out) == [i + 10 for i in range(100)]


async def test_feed_and_results_round_trip_with_backpressure() -> None:
    feeder = FeedProducer()
    b = BumpN()(feeder)
    c = ResultsConsumer()(b)
    flow = Flow([feeder], [c], flow_options={"queue_size": 4, "batch_size": 2})
    run = asyncio.create_task(flow.run())

    async def feed() -> None:
        for i in range(200):
            await feeder.put({"n": i})  # a mutable item: fixed when put
        await feeder.end()

    feeding = asyncio.create_task(feed())
    await asyncio.sleep(0.5)
    assert not feeding.done(), "put() waits while nobody reads the results (backpressure)"
    got = [item async for item in flow.results(c)]
    await feeding
    await asyncio.wait_for(run, 30)
    assert got == [{"n": i + 1} for i in range(200)]


async def test_leaving_the_results_loop_early_lets_the_flow_end() -> None:
    a = CountProducer(5000)
    c = ResultsConsumer()(a)
    flow = Flow([a], [c], flow_options={"queue_size": 8})
    run = asyncio.create_task(flow.run())
    async for item in flow.results(c):
        if item == 10:
            break
    await asyncio.wait_for(run, 30)
    assert flow.stats()[a.name].processed == 5000


async def test_stop_interrupts_a_feeder_waiting_for_the_host() -> None:
    feeder = FeedProducer()
    c = ResultsConsumer()(feeder)
    flow = Flow([feeder], [c])
    run = asyncio.create_task(flow.run())
    await feeder.put(1)
    got = []
    async for item in flow.results(c):
        got.append(item)
        flow.stop()  # the feeder's next() is waiting for put(): stop must not wait for it
    await asyncio.wait_for(run, 10)
    assert got == [1]
    with pytest.raises(RuntimeError, match="not running"):
        await asyncio.wait_for(feeder.put(2), 5)


def test_results_of_a_foreign_node_is_refused() -> None:
    a = CountProducer(1)
    c = ResultsConsumer()(a)
    flow = Flow([a], [c])
    with pytest.raises(ValueError, match="not a ResultsConsumer of this flow"):
        flow.results(ResultsConsumer())
