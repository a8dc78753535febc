"""The workers of an ``nb_tasks`` stage share a small run, and REALTIME's default window
(one row per hop) keeps every worker busy: on both engines."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from asyncflow.core import REALTIME, Flow, ProcessorNode
from tests.helpers import CountProducer, Recorder, Sleepy, recorded

ray = pytest.importorskip("ray")

DELAY = 0.05  # seconds SlowId spends on an item


class SlowId(ProcessorNode):
    """Identity that sleeps ``delay`` per item and logs ``pid start end item`` to ``log``."""

    def __init__(self, delay: float, log: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay
        self.log = log

    def process(self, x: Any) -> Any:
        start = time.time()
        time.sleep(self.delay)
        line = f"{os.getpid()} {start!r} {time.time()!r} {x}\n"
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line.encode())  # one short O_APPEND write: lines of several workers do not mix
        finally:
            os.close(fd)
        return x


def intervals(log: Path) -> list[tuple[float, float]]:
    """(start, end) of every item SlowId processed."""
    spans = []
    for line in log.read_text().splitlines():
        _, start, end, _ = line.split()
        spans.append((float(start), float(end)))
    return spans


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most items that were being processed at the same moment."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    busy = best = 0
    for _, step in edges:
        busy += step
        best = max(best, busy)
    return best


def shares(flow: Flow, node: ProcessorNode) -> dict[str, int]:
    return {name: s.processed for name, s in flow.stats().items() if name.startswith(node.name + "[")}


@pytest.mark.parametrize("n", [40, 100])
async def test_a_small_run_is_shared_by_every_worker(engine: str, tmp_path: Path, n: int) -> None:
    """A fast producer used to hand its whole run to the first worker on Ray (40 rows: [40, 0, 0, 0])."""
    out, log = tmp_path / "out.jsonl", tmp_path / "log"
    a = CountProducer(n)
    b = SlowId(DELAY, str(log), nb_tasks=4)(a)
    c = Recorder(out)(b)
    flow = Flow([a], [c], flow_options={"engine": engine})
    await asyncio.wait_for(flow.run(), 120)
    assert recorded(out) == list(range(n)), "BATCH: every item, in order"
    got = shares(flow, b)
    assert len(got) == 4 and sum(got.values()) == n, got
    assert all(count >= n // 8 for count in got.values()), f"every worker takes a share: {got}"
    spans = intervals(log)
    took = max(e for _, e in spans) - min(s for s, _ in spans)  # from the first item on: no start-up
    one_worker = n * DELAY
    assert took < 0.6 * one_worker, f"{took:.2f}s for {n} items, one worker alone: {one_worker:.2f}s ({got})"


async def test_realtime_default_window_keeps_every_worker_busy(engine: str, tmp_path: Path) -> None:
    """REALTIME's defaults (queue_size=1, batch_size=1): a free worker still gets a row.

    A 50 Hz source in front of 4 workers of 200 ms each keeps them all busy; a window of
    one row per hop used to keep at most two of them (one row per hop, two hops) busy on Ray.
    """
    out, log = tmp_path / "out.jsonl", tmp_path / "log"
    n = 40
    a = CountProducer(n, delay=0.02)
    b = SlowId(0.2, str(log), nb_tasks=4)(a)
    c = Recorder(out)(b)
    flow = Flow([a], [c], flow_type=REALTIME, flow_options={"engine": engine})
    await asyncio.wait_for(flow.run(), 120)
    got = recorded(out)
    dropped = sum(s.dropped for s in flow.stats().values())
    assert got == sorted(got) and len(got) + dropped == n, (len(got), dropped)
    assert all(shares(flow, b).values()), shares(flow, b)
    assert most_at_once(intervals(log)) >= 3, f"workers busy at once: {most_at_once(intervals(log))}"


async def test_realtime_defaults_deliver_the_newest_without_stalling(engine: str, tmp_path: Path) -> None:
    """A window of one row, batches of one row: a fast source ends, the newest item arrives."""
    out = tmp_path / "out.jsonl"
    a = CountProducer(300)
    c = Recorder(out)(Sleepy(0.005)(a))
    flow = Flow([a], [c], flow_type=REALTIME, flow_options={"engine": engine})
    await asyncio.wait_for(flow.run(), 60)
    got = recorded(out)
    dropped = sum(s.dropped for s in flow.stats().values())
    assert got and got == sorted(got) and got[-1] == 299
    assert len(got) + dropped == 300 and dropped > 0
