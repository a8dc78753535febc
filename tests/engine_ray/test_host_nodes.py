"""Host nodes (FeedProducer, ResultsConsumer) and stop() interrupting a waiting next(), on both engines.

On Ray the driver runs the host nodes itself (the application's side is in the same
process): a FeedProducer feeds the chain from its start, a ResultsConsumer's rows
come back to the driver in the chain's order.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from asyncflow.core import Flow, FlowError, ProducerNode
from asyncflow.core.host import FeedProducer, ResultsConsumer
from tests.helpers import Add, BumpN, CountProducer, Recorder, events, recorded

ray = pytest.importorskip("ray")


async def test_results_come_back_to_the_host_in_order(engine: str) -> None:
    a = CountProducer(500)
    c = ResultsConsumer()(Add(1, nb_tasks=2)(a))
    flow = Flow([a], [c], flow_options={"engine": engine, "batch_size": 16, "queue_size": 64})
    run = asyncio.create_task(flow.run())
    got = [item async for item in flow.results(c)]
    await asyncio.wait_for(run, 60)
    assert got == list(range(1, 501))


async def test_feed_and_results_round_trip_with_backpressure(engine: str) -> None:
    feeder = FeedProducer()
    c = ResultsConsumer()(BumpN()(feeder))
    flow = Flow([feeder], [c], flow_options={"engine": engine, "queue_size": 4, "batch_size": 2})
    run = asyncio.create_task(flow.run())

    async def feed() -> None:
        for i in range(200):
            await feeder.put({"n": i})  # a mutable item: fixed when put
        await feeder.end()

    feeding = asyncio.create_task(feed())
    await asyncio.sleep(1.0)
    assert not feeding.done(), "put() waits while nobody reads the results (backpressure)"
    got = [item async for item in flow.results(c)]
    await feeding
    await asyncio.wait_for(run, 60)
    assert got == [{"n": i + 1} for i in range(200)]


async def test_leaving_the_results_loop_early_lets_the_flow_end(engine: str) -> None:
    a = CountProducer(3000)
    c = ResultsConsumer()(a)
    flow = Flow([a], [c], flow_options={"engine": engine, "queue_size": 8})
    run = asyncio.create_task(flow.run())
    async for item in flow.results(c):
        if item == 10:
            break
    await asyncio.wait_for(run, 60)
    assert flow.stats()[a.name].processed == 3000


async def test_stop_ends_the_feed_behind_what_put_accepted(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    feeder = FeedProducer()
    c = Recorder(out)(Add(100)(feeder))
    flow = Flow([feeder], [c], flow_options={"engine": engine})
    run = asyncio.create_task(flow.run())
    for i in range(20):
        await feeder.put(i)
    flow.stop()
    await asyncio.wait_for(run, 60)
    assert recorded(out) == [i + 100 for i in range(20)], "every item put() accepted is delivered"
    with pytest.raises(RuntimeError, match="not running"):
        await asyncio.wait_for(feeder.put(99), 5)


class Stalls(ProducerNode):
    """Emits 0..4, then waits a minute in an async next() (a source that went quiet); records open/close."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path

    def open(self) -> None:
        self.i = 0
        with open(self.path, "a") as file:
            file.write('{"event": "open"}\n')

    async def next(self) -> int:
        if self.i >= 5:
            await asyncio.sleep(60)
        self.i += 1
        return self.i - 1

    def close(self) -> None:
        with open(self.path, "a") as file:
            file.write('{"event": "close"}\n')


async def test_stop_interrupts_a_producer_waiting_in_next(engine: str, tmp_path: Path) -> None:
    out, log = tmp_path / "out.jsonl", tmp_path / "producer.jsonl"
    a = Stalls(str(log))
    c = Recorder(out)(a)
    flow = Flow([a], [c], flow_options={"engine": engine})
    run = asyncio.create_task(flow.run())
    deadline = time.monotonic() + 60
    while len(recorded(out)) < 5:
        assert time.monotonic() < deadline and not run.done()
        await asyncio.sleep(0.05)
    stopped = time.monotonic()
    flow.stop()
    await asyncio.wait_for(run, 30)
    assert time.monotonic() - stopped < 5, "stop() did not wait for the minute-long next()"
    assert recorded(out) == [0, 1, 2, 3, 4]
    assert events(log) == ["open", "close"]


async def test_a_feed_behind_another_producer_is_refused_on_ray(ray_session: None) -> None:
    a, feeder = CountProducer(3), FeedProducer()
    c = ResultsConsumer()(Add(0)(a))
    d = ResultsConsumer()(feeder)
    with pytest.raises(FlowError, match="first producer"):
        await Flow([a, feeder], [c, d], flow_options={"engine": "ray"}).run()
