"""End-to-end runs: what consumers receive, in order, through every graph shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncflow.core import BATCH, REALTIME, Flow
from tests.helpers import (
    Add,
    AsyncCountProducer,
    AsyncMul,
    CountProducer,
    Jitter,
    Pair,
    Recorder,
    Sleepy,
    events,
    recorded,
)


async def test_chain_delivers_every_item_in_order(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(2000)
    b = Add(1)(a)
    c = Recorder(out)(b)
    await Flow([a], [c]).run()
    assert recorded(out) == list(range(1, 2001))
    assert events(out) == ["open", "close"]


async def test_async_methods_are_awaited(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = AsyncCountProducer(50)
    b = AsyncMul(3)(a)
    c = Recorder(out)(b)
    await Flow([a], [c]).run()
    assert recorded(out) == [3 * i for i in range(50)]


@pytest.mark.parametrize("nb_tasks", [2, 3])
async def test_nb_tasks_restores_input_order(tmp_path: Path, nb_tasks: int) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(300)
    b = Jitter(nb_tasks=nb_tasks)(a)
    c = Recorder(out)(b)
    flow = Flow([a], [c])
    await flow.run()
    assert recorded(out) == list(range(300))
    stats = flow.stats()
    workers = [name for name in stats if name.startswith(b.name + "[")]
    assert len(workers) == nb_tasks
    assert all(stats[w].processed > 0 for w in workers), "every worker should take a share"


async def test_two_parallel_stages_in_a_row_keep_order(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(200)
    b = Jitter(nb_tasks=2)(a)
    c = Jitter(nb_tasks=3)(b)
    d = Recorder(out)(c)
    await Flow([a], [d]).run()
    assert recorded(out) == list(range(200))


async def test_unordered_stage_delivers_every_item(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(200)
    b = Jitter(nb_tasks=3, ordered=False)(a)
    c = Add(0, nb_tasks=2)(b)
    d = Recorder(out)(c)
    await Flow([a], [d]).run()
    got = recorded(out)
    assert sorted(got) == list(range(200))


async def test_diamond_joins_branches_row_by_row(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(100)
    b = Add(1)(a)
    c = Add(1000, nb_tasks=2)(a)
    d = Pair()(b, c)
    e = Recorder(out)(d)
    await Flow([a], [e]).run()
    assert recorded(out) == [[i + 1, i + 1000] for i in range(100)]


async def test_several_consumers_each_get_everything(tmp_path: Path) -> None:
    out1, out2 = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    a = CountProducer(100)
    b = Add(5)(a)
    c1 = Recorder(out1)(b)
    c2 = Recorder(out2)(a)
    await Flow([a], [c1, c2]).run()
    assert recorded(out1) == [i + 5 for i in range(100)]
    assert recorded(out2) == list(range(100))


async def test_several_producers_zip_and_run_to_the_longest(tmp_path: Path) -> None:
    both, long_only, short_only = tmp_path / "b.jsonl", tmp_path / "l.jsonl", tmp_path / "s.jsonl"
    long = CountProducer(30)
    short = CountProducer(10)
    zipped = Pair()(long, short)
    c1 = Recorder(both)(zipped)
    c2 = Recorder(long_only)(long)
    c3 = Recorder(short_only)(short)
    await Flow([long, short], [c1, c2, c3]).run()
    assert recorded(both) == [[i, i] for i in range(10)]
    assert recorded(long_only) == list(range(30))
    assert recorded(short_only) == list(range(10))


async def test_short_producer_listed_first(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    short = CountProducer(3)
    long = CountProducer(8)
    c1 = Recorder(out)(long)
    c2 = Recorder(tmp_path / "z.jsonl")(Pair()(short, long))
    await Flow([short, long], [c1, c2]).run()
    assert recorded(out) == list(range(8))
    assert recorded(tmp_path / "z.jsonl") == [[i, i] for i in range(3)]


async def test_builtin_example_from_the_design(capfd: pytest.CaptureFixture[str]) -> None:
    from asyncflow.consumers import CommandlineConsumer
    from asyncflow.processors import IdentityProcessor
    from asyncflow.producers import IntProducer

    a = IntProducer(0, 40, 0.001)
    b = IdentityProcessor()(a)
    c = CommandlineConsumer()(b)
    await Flow([a], [c]).run()
    printed = capfd.readouterr().out.split()
    assert printed == [str(i) for i in range(41)]


async def test_flow_can_run_again_after_it_ended(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(5)
    c = Recorder(out)(a)
    flow = Flow([a], [c])
    await flow.run()
    await flow.run()
    assert recorded(out) == list(range(5)) * 2


async def test_realtime_drops_oldest_and_counts_drops(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(400)
    b = Sleepy(0.005)(a)
    c = Recorder(out)(b)
    flow = Flow([a], [c], flow_type=REALTIME, flow_options={"queue_size": 4, "batch_size": 1})
    await flow.run()
    got = recorded(out)
    stats = flow.stats()
    dropped = stats[a.name].dropped
    assert dropped > 0
    assert len(got) + dropped == 400, "every item is either delivered or counted as dropped"
    assert got == sorted(got), "REALTIME keeps the order of what it delivers"
    assert got[-1] == 399, "the newest item wins over the oldest"


async def test_batch_applies_backpressure_without_loss(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(300)
    c = Recorder(out, delay=0.001)(a)
    flow = Flow([a], [c], flow_type=BATCH, flow_options={"queue_size": 4, "batch_size": 2})
    await flow.run()
    assert recorded(out) == list(range(300))
    assert flow.stats()[a.name].dropped == 0


async def test_mutated_buffer_does_not_change_what_was_emitted(tmp_path: Path) -> None:
    from tests.helpers_buffers import ReusedBufferProducer

    out = tmp_path / "out.jsonl"
    a = ReusedBufferProducer(50)
    c = Recorder(out)(a)
    await Flow([a], [c]).run()
    assert recorded(out) == [[i] * 4 for i in range(50)]


async def test_large_items_arrive_intact(tmp_path: Path) -> None:
    from tests.helpers_buffers import BigBytesProducer, Checksum

    out = tmp_path / "out.jsonl"
    a = BigBytesProducer(4, 8 * 1024 * 1024)
    b = Checksum()(a)
    c = Recorder(out)(b)
    await Flow([a], [c]).run()
    assert recorded(out) == [BigBytesProducer.expected(i, 8 * 1024 * 1024) for i in range(4)]


async def test_stats_are_live_while_the_flow_runs(tmp_path: Path) -> None:
    import asyncio

    out = tmp_path / "out.jsonl"
    a = CountProducer(None, delay=0.002)
    b = Sleepy(0.001)(a)
    c = Recorder(out)(b)
    flow = Flow([a], [c])
    task = asyncio.create_task(flow.run())
    try:
        seen = 0
        for _ in range(100):
            await asyncio.sleep(0.1)
            live = flow.stats()
            if live and live[b.name].processed > 20:
                seen = live[b.name].processed
                break
        assert seen > 20, "stats show progress before the flow ends"
        assert live[b.name].samples, "recent per-item times are reported"
        assert 0.0005 < live[b.name].percentile(50) < 0.5
        assert not live[b.name].finished
    finally:
        flow.stop()
        await asyncio.wait_for(task, 30)
    final = flow.stats()
    assert final[b.name].finished and final[b.name].processed >= seen
    assert 0 < final[b.name].busy_fraction <= 1.0
