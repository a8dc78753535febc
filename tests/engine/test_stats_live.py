"""``flow.stats()``: live for a node working through a long block, and about the last run after it ended."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from asyncflow.core import Flow, NodeFailedError
from tests.helpers import CountProducer, FailAt, Recorder, Sleepy


async def test_a_slow_node_reports_while_it_works_through_a_block(tmp_path: Path) -> None:
    a = CountProducer(400, name="numbers")
    b = Sleepy(0.01, name="slow")(a)  # 4 s of work, all of it in the first blocks it takes
    c = Recorder(tmp_path / "out.jsonl", name="sink")(b)
    flow = Flow([a], [c])
    run = asyncio.create_task(flow.run())
    try:
        await asyncio.sleep(2.0)
        seen = flow.stats().get("slow")
        assert seen is not None and seen.processed > 0 and seen.busy_seconds > 0.3, seen
    finally:
        flow.stop()
        await run


async def test_stats_after_a_failed_run_describe_that_run(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(100, name="numbers")
    b = FailAt(5, name="fails")(a)
    c = Recorder(out, name="sink")(b)
    flow = Flow([a], [c])
    with pytest.raises(NodeFailedError):
        await flow.run()
    stats = flow.stats()
    assert stats["sink"].processed == 5 and stats["fails"].received >= 6
    assert stats["numbers"].processed >= 6
