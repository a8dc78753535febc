"""The host's edges: results() of runs that end at once, readers that leave or share, a feed stopped mid-way."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

import asyncflow
from asyncflow.core import Flow, FlowError
from asyncflow.core.host import FeedClosedError, FeedProducer, ResultsConsumer
from tests.helpers import Add, CountProducer


async def _read(flow: Flow, node: ResultsConsumer) -> list[Any]:
    return [item async for item in flow.results(node)]


def _counting(n: int, queue_size: int = 8) -> tuple[Flow, CountProducer, ResultsConsumer]:
    a = CountProducer(n)
    c = ResultsConsumer()(a)
    return Flow([a], [c], flow_options={"queue_size": queue_size}), a, c


# -- 4: results() of a run that ends at once, or of no run ---------------------------------


async def test_results_end_when_stop_came_before_run() -> None:
    flow, _, c = _counting(10)
    flow.stop()
    run = asyncio.create_task(flow.run())
    assert await asyncio.wait_for(_read(flow, c), 5) == []
    await asyncio.wait_for(run, 5)


async def test_results_read_after_a_run_that_ended_at_once_end_too() -> None:
    # gather() starts run() first: with a stop pending it is over before results() is called.
    flow, _, c = _counting(10)
    flow.stop()
    _, got = await asyncio.wait_for(asyncio.gather(flow.run(), _read(flow, c)), 5)
    assert got == []


async def test_results_end_when_the_flow_fails_at_start() -> None:
    a = CountProducer(10)
    b = Add(1, device_type="gpu", cpu_fallback=False)(a)
    c = ResultsConsumer()(b)
    flow = Flow([a], [c], flow_options={"gpus": []})
    outcome = await asyncio.wait_for(asyncio.gather(flow.run(), _read(flow, c), return_exceptions=True), 5)
    assert isinstance(outcome[0], FlowError) and "needs a GPU" in str(outcome[0])
    assert outcome[1] == [], "the reader ends (no items); run() raises the error"


async def test_results_without_a_run_raise_once_start_timeout_has_passed() -> None:
    flow, _, c = _counting(10)
    with pytest.raises(RuntimeError, match=r"no run of this flow started within 0\.2 s"):
        await asyncio.wait_for(_read_with(flow, c, 0.2), 5)
    with pytest.raises(ValueError, match="start_timeout"):
        flow.results(c, start_timeout=-1)


async def _read_with(flow: Flow, node: ResultsConsumer, start_timeout: float) -> list[Any]:
    return [item async for item in flow.results(node, start_timeout=start_timeout)]


async def test_results_called_between_runs_read_the_next_run() -> None:
    flow, _, c = _counting(20)
    first = asyncio.create_task(flow.run())
    assert await asyncio.wait_for(_read(flow, c), 30) == list(range(20))
    await asyncio.wait_for(first, 30)
    reader = asyncio.create_task(_read(flow, c))  # the first run was read to its end: waits for the next
    await asyncio.sleep(0.2)
    assert not reader.done()
    await asyncio.wait_for(flow.run(), 30)
    assert await asyncio.wait_for(reader, 5) == list(range(20))


# -- 5: a reader that leaves -------------------------------------------------------------------


async def test_leaving_a_loop_over_a_kept_iterator_lets_the_flow_end() -> None:
    flow, a, c = _counting(5000)
    run = asyncio.create_task(flow.run())
    it = flow.results(c)
    async for item in it:
        if item == 10:
            break
    await asyncio.wait_for(run, 30)
    assert flow.stats()[a.name].processed == 5000
    assert it is not None  # still referenced: leaving the loop was enough


async def test_a_loop_left_by_an_exception_lets_the_flow_end() -> None:
    flow, a, c = _counting(5000)
    run = asyncio.create_task(flow.run())
    it = flow.results(c)
    with pytest.raises(KeyError):
        async for item in it:
            if item == 10:
                raise KeyError(item)
    await asyncio.wait_for(run, 30)
    assert flow.stats()[a.name].processed == 5000


async def test_a_second_loop_over_the_same_iterator_goes_on_where_the_first_stopped() -> None:
    flow, _, c = _counting(2000)
    run = asyncio.create_task(flow.run())
    it = flow.results(c)
    first = []
    async for item in it:
        first.append(item)
        if item == 100:
            break
    rest = [item async for item in it]
    await asyncio.wait_for(run, 30)
    assert first + rest == list(range(2000))


async def test_pulling_by_hand_holds_the_flow_until_aclose() -> None:
    flow, a, c = _counting(5000)
    run = asyncio.create_task(flow.run())
    it = flow.results(c)
    assert [await anext(it) for _ in range(3)] == [0, 1, 2]
    await asyncio.sleep(1.0)
    assert not run.done(), "a reader pulling by hand keeps backpressure until aclose()"
    await it.aclose()
    await asyncio.wait_for(run, 30)
    assert flow.stats()[a.name].processed == 5000
    with pytest.raises(StopAsyncIteration):
        await anext(it)


# -- 7: two readers at once ----------------------------------------------------------------------


async def test_two_readers_at_once_share_the_items_and_both_end() -> None:
    flow, _, c = _counting(3000, queue_size=64)
    run = asyncio.create_task(flow.run())

    async def reader() -> list[int]:
        got = []
        async for item in flow.results(c):
            got.append(item)
            if len(got) % 7 == 0:
                await asyncio.sleep(0)  # let the other one take some
        return got

    one, two = await asyncio.wait_for(asyncio.gather(reader(), reader()), 30)
    await asyncio.wait_for(run, 30)
    assert sorted(one + two) == list(range(3000)), "each item goes to one reader"
    assert one == sorted(one) and two == sorted(two)
    assert one and two


# -- 6: a feed stopped mid-way ------------------------------------------------------------------


async def test_stop_delivers_every_item_put_accepted_and_refuses_later_puts() -> None:
    feed = FeedProducer()
    c = ResultsConsumer()(Add(1)(feed))
    flow = Flow([feed], [c])
    run = asyncio.create_task(flow.run())
    accepted: list[int] = []
    refused: list[BaseException] = []

    async def produce() -> None:
        try:
            for i in range(1_000_000):
                await feed.put(i)
                accepted.append(i)
        except FeedClosedError as exc:
            refused.append(exc)

    producing = asyncio.create_task(produce())
    got = []
    async for item in flow.results(c):
        got.append(item)
        if len(got) == 2000:
            flow.stop()
    await asyncio.wait_for(run, 30)
    await asyncio.wait_for(producing, 5)
    assert got == [i + 1 for i in accepted], "every item whose put() returned is delivered"
    assert len(refused) == 1 and isinstance(refused[0], RuntimeError)
    assert "stopping" in str(refused[0])
    with pytest.raises(FeedClosedError, match="not running"):
        await feed.put(0)


async def test_stop_at_once_after_start_loses_no_accepted_item() -> None:
    feed = FeedProducer()
    c = ResultsConsumer()(feed)
    flow = Flow([feed], [c])
    accepted: list[int] = []
    first = asyncio.Event()

    async def produce() -> None:
        try:
            for i in range(1_000_000):
                await feed.put(i)
                accepted.append(i)
                first.set()
        except FeedClosedError:
            pass

    producing = asyncio.create_task(produce())
    run = asyncio.create_task(flow.run())
    reading = asyncio.create_task(_read(flow, c))
    await asyncio.wait_for(first.wait(), 30)
    flow.stop()  # as soon as the feed has taken its first item
    got = await asyncio.wait_for(reading, 30)
    await asyncio.wait_for(run, 30)
    await asyncio.wait_for(producing, 5)
    assert got == accepted


async def test_puts_from_several_coroutines_are_all_delivered() -> None:
    feed = FeedProducer()
    c = ResultsConsumer()(feed)
    flow = Flow([feed], [c], flow_options={"queue_size": 4, "batch_size": 2})
    run = asyncio.create_task(flow.run())

    async def produce(base: int) -> None:
        for i in range(300):
            await feed.put(base + i)

    async def feed_all() -> None:
        await asyncio.gather(produce(0), produce(1000), produce(2000))
        await feed.end()

    feeding = asyncio.create_task(feed_all())
    got = await asyncio.wait_for(_read(flow, c), 30)
    await asyncio.wait_for(feeding, 5)
    await asyncio.wait_for(run, 30)
    assert sorted(got) == sorted([*range(300), *range(1000, 1300), *range(2000, 2300)])
    for base in (0, 1000, 2000):
        assert [x for x in got if base <= x < base + 1000] == list(range(base, base + 300))


async def test_a_put_waiting_for_a_run_that_stopped_before_start_fails() -> None:
    feed = FeedProducer()
    c = ResultsConsumer()(feed)
    flow = Flow([feed], [c])
    putting = asyncio.create_task(feed.put(1))
    await asyncio.sleep(0.05)
    flow.stop()
    await asyncio.wait_for(flow.run(), 5)
    with pytest.raises(FeedClosedError, match="not running"):
        await asyncio.wait_for(putting, 5)


# -- 10: asyncflow.run() inside a running loop ------------------------------------------------


async def test_asyncflow_run_inside_a_running_loop_says_to_await_flow_run() -> None:
    flow, _, _ = _counting(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match=r"await flow\.run\(\)"):
            asyncflow.run(flow)
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert not flow.running and flow.stats() == {}
