"""Load tests that assert numbers: memory stays flat, backpressure bounds what is in
flight, repeated runs leak no fd, thread or process, concurrent flows do not mix,
and large items arrive intact (docs/design.md#flow-control, #shared-memory, #stop-protocol).

The nodes (``tests/helpers_load.py``) measure from inside their child processes and
leave what they measured in files; the figures are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import psutil
import pytest

from asyncflow.core import Flow
from asyncflow.core.options import FlowOptions
from asyncflow.processors import IdentityProcessor
from tests.helpers import Add, AsyncCountProducer, CountProducer, Recorder, recorded
from tests.helpers_load import (
    BigRandomProducer,
    ChecksumConsumer,
    CountingProducer,
    PaddedCountProducer,
    RssConsumer,
    SlowCheckingConsumer,
    Square,
    Upper,
    WordProducer,
    make_counter,
    read_counter,
)

MiB = 1024 * 1024


def _new_children(before: set[int]) -> list[psutil.Process]:
    """Child processes (zombies included) that were not there before."""
    return [p for p in psutil.Process().children(recursive=True) if p.pid not in before]


# -- 1. soak: memory stays flat ------------------------------------------------------


@pytest.mark.slow
async def test_soak_300k_items_memory_stays_flat(tmp_path: Path) -> None:
    n, size = 300_000, 256
    result = tmp_path / "rss.json"
    a = PaddedCountProducer(n, size)
    b = IdentityProcessor()(a)
    c = RssConsumer(str(result), mark=n // 5, size=size)(b)
    flow = Flow([a], [c])
    started = time.perf_counter()
    await asyncio.wait_for(flow.run(), 120)
    elapsed = time.perf_counter() - started
    got = json.loads(result.read_text())
    growth = got["rss_end"] - got["rss_mark"]
    print(
        f"\nsoak: {n} items of {size} B in {elapsed:.2f} s ({n / elapsed:,.0f} items/s); consumer RSS "
        f"at 20% {got['rss_mark'] / MiB:.1f} MiB, at end {got['rss_end'] / MiB:.1f} MiB, "
        f"growth {growth / MiB:+.2f} MiB, peak {got['peak_rss'] / MiB:.1f} MiB"
    )
    assert got["count"] == n, "the consumer must count every item"
    assert got["bad"] == 0, "every item must arrive with its size, in order"
    assert flow.stats()[c.name].processed == n
    assert growth < 16 * MiB, f"consumer RSS grew by {growth / MiB:.1f} MiB between 20% and the end"
    assert elapsed < 60, f"300k small items took {elapsed:.1f} s"


# -- 2. backpressure: what is in flight stays bounded ---------------------------------


@pytest.mark.slow
async def test_backpressure_bounds_items_in_flight_and_stop_loses_nothing(tmp_path: Path) -> None:
    emitted_file, consumed_file, result = tmp_path / "emitted", tmp_path / "consumed", tmp_path / "result.json"
    make_counter(emitted_file)
    make_counter(consumed_file)
    a = CountingProducer(str(emitted_file))
    c = SlowCheckingConsumer(str(consumed_file), str(result), delay=0.001)(a)
    flow = Flow([a], [c])  # BATCH, default options
    options = FlowOptions()
    hops = 1
    # Per hop: at most queue_size items sent and not acknowledged (a partly filled
    # batch counts: items are charged when they join a batch), plus what the two
    # tasks hold in hand: the producer's batch not yet handed over and the batch
    # the consumer has taken (and acknowledged) but not finished, a batch each.
    # The two counters are read one after the other, not at one instant: a batch
    # the producer sends in between can show up once more, so one batch of slack.
    bound = hops * (options.queue_size + 3 * options.batch_size) + 2

    task = asyncio.create_task(flow.run())
    try:
        deadline = time.monotonic() + 30
        while read_counter(consumed_file) < 200:  # wait until the flow is streaming
            assert time.monotonic() < deadline, "the flow did not start streaming"
            assert not task.done(), "the flow ended on its own"
            await asyncio.sleep(0.01)
        samples: list[int] = []
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            consumed = read_counter(consumed_file)  # read first: the difference can only be overestimated
            emitted = read_counter(emitted_file)
            samples.append(emitted - consumed)
            await asyncio.sleep(0.005)
        emitted_at_4s, consumed_at_4s = read_counter(emitted_file), read_counter(consumed_file)
    finally:
        flow.stop()
        await asyncio.wait_for(task, 30)
    worst = max(samples)
    print(
        f"\nbackpressure: after ~4 s emitted {emitted_at_4s}, consumed {consumed_at_4s}; in flight over "
        f"{len(samples)} samples: max {worst}, median {sorted(samples)[len(samples) // 2]}, "
        f"bound asserted {bound} (queue_size {options.queue_size}, batch_size {options.batch_size})"
    )
    assert worst <= bound, f"{worst} items in flight on one hop; the design bounds it by {bound}"
    assert consumed_at_4s > 1000, "the consumer should have taken ~1 item per ms"

    final = json.loads(result.read_text())
    emitted = read_counter(emitted_file)
    print(f"after stop: emitted {emitted}, consumed {final['count']}")
    assert final["first_gap"] is None, f"consumed items are not 0..n-1: first gap at {final['first_gap']}"
    assert final["count"] == emitted, "every item the producer emitted must reach the consumer"
    assert read_counter(consumed_file) == emitted
    assert flow.stats()[a.name].processed == emitted


# -- 3. many flows in a row: no fd, thread or process leak ----------------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_25_flows_in_a_row_leak_no_fd_thread_or_process(tmp_path: Path) -> None:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    figures: dict[int, tuple[int, int, int]] = {}
    started = time.perf_counter()
    for k in range(1, 26):
        out = tmp_path / f"out{k}.jsonl"
        a = CountProducer(50)
        b = Add(k)(a)
        c = Recorder(out)(b)
        await asyncio.wait_for(Flow([a], [c]).run(), 60)
        assert recorded(out) == [i + k for i in range(50)], f"flow {k} delivered the wrong items"
        left = _new_children(before)
        assert not left, f"flow {k} left child processes: {[(p.pid, p.status()) for p in left]}"
        figures[k] = (_fds(), threading.active_count(), me.num_threads())
    elapsed = time.perf_counter() - started
    print(
        f"\n25 flows in {elapsed:.1f} s; (fds, threading.active_count, OS threads) after flow 1: {figures[1]}, "
        f"5: {figures[5]}, 25: {figures[25]}"
    )
    fds5, active5, os5 = figures[5]
    fds25, active25, os25 = figures[25]
    assert abs(fds25 - fds5) <= 2, f"open fds went from {fds5} after flow 5 to {fds25} after flow 25"
    assert active25 == active5, f"Python threads went from {active5} to {active25}"
    assert os25 == os5, f"OS threads went from {os5} to {os25}"


# -- 4. several flows at once in one event loop ----------------------------------------


async def test_three_flows_at_once_in_one_loop(tmp_path: Path) -> None:
    out1, out2, out3 = tmp_path / "1.jsonl", tmp_path / "2.jsonl", tmp_path / "3.jsonl"
    a1 = CountProducer(400)
    c1 = Recorder(out1)(Add(7)(a1))
    a2 = WordProducer(150)
    c2 = Recorder(out2)(Upper("!")(a2))
    a3 = AsyncCountProducer(90)
    c3 = Recorder(out3)(Square(nb_tasks=2)(a3))
    flows = [Flow([a1], [c1]), Flow([a2], [c2]), Flow([a3], [c3], flow_options={"queue_size": 16})]
    await asyncio.wait_for(asyncio.gather(*(f.run() for f in flows)), 60)
    assert recorded(out1) == [i + 7 for i in range(400)]
    assert recorded(out2) == [f"W{i}!" for i in range(150)]
    assert recorded(out3) == [i * i for i in range(90)]


# -- 5. large items arrive intact -----------------------------------------------------


@pytest.mark.slow
async def test_six_48mib_items_arrive_intact(tmp_path: Path) -> None:
    n, size = 6, 48 * MiB
    sent, got = tmp_path / "sent.txt", tmp_path / "got.jsonl"
    a = BigRandomProducer(n, size, str(sent))
    b = IdentityProcessor()(a)
    c = ChecksumConsumer(str(got))(b)
    started = time.perf_counter()
    await asyncio.wait_for(Flow([a], [c]).run(), 100)
    elapsed = time.perf_counter() - started
    produced = sent.read_text().split()
    lines = [json.loads(line) for line in got.read_text().splitlines() if line]
    received = [line for line in lines if "sha256" in line]
    peak = next(line["peak_rss"] for line in lines if "peak_rss" in line)
    print(f"\nlarge items: {n} x {size // MiB} MiB in {elapsed:.2f} s; consumer peak RSS {peak / MiB:.0f} MiB")
    assert len(produced) == n and len(set(produced)) == n
    assert [r["size"] for r in received] == [size] * n
    assert [r["sha256"] for r in received] == produced, "every item must arrive byte for byte, in order"
