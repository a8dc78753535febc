"""LiveDisplay: the live table in a terminal, one summary line elsewhere, per-node aggregation."""

from __future__ import annotations

import asyncio
import io
import re

import pytest
from rich.console import Console

from asyncflow.consumers import VoidConsumer
from asyncflow.core import REALTIME, Flow
from asyncflow.engine.spec import TaskStats
from asyncflow.monitor import LiveDisplay, node_stats
from asyncflow.monitor.live import _Rate
from tests.helpers import Add, CountProducer, SizedCountProducer, Sleepy


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=120, color_system=None), buffer


def plain(text: str) -> str:
    """Terminal output without its cursor-movement escapes."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def small_flow(n: int = 60) -> Flow:
    a = SizedCountProducer(n, name="numbers")
    b = Sleepy(0.002, name="worker")(a)
    c = VoidConsumer(name="sink")(b)
    return Flow([a], [c])


async def test_terminal_shows_every_node_with_its_counts_and_the_progress() -> None:
    flow = small_flow(60)
    console, buffer = terminal()
    display = LiveDisplay(flow, console=console, refresh=0.05)
    await display.run_until(flow.run())
    out = plain(buffer.getvalue())
    for name in ("numbers", "worker", "sink"):
        assert re.search(rf"{name} ✓\s+60\s", out), f"no final row for {name}:\n{out}"
    assert "60/60" in out  # the progress bar: the producer's len_hint is 60
    assert "100%" in out
    assert display.summary is not None
    assert display.summary.startswith("asyncflow: finished in ")
    assert "60 of 60 items consumed" in display.summary
    assert out.rstrip().endswith(display.summary)


async def test_a_console_that_is_not_a_terminal_gets_one_summary_line() -> None:
    flow = small_flow(30)
    buffer = io.StringIO()
    console = Console(file=buffer, width=120)
    assert not console.is_terminal
    async with LiveDisplay(flow, console=console, refresh=0.05):
        await flow.run()
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1, buffer.getvalue()
    assert lines[0].startswith("asyncflow: finished in ")
    assert "30 of 30 items consumed" in lines[0]
    assert "busiest node worker" in lines[0]


async def test_a_failed_run_is_summarised_as_failed_and_reraises() -> None:
    flow = small_flow(10)
    buffer = io.StringIO()
    display = LiveDisplay(flow, console=Console(file=buffer, width=120))

    async def boom() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await display.run_until(boom())
    assert buffer.getvalue().startswith("asyncflow: failed in ")


def test_nodes_with_several_tasks_are_added_up() -> None:
    a = CountProducer(10, name="numbers")
    b = Add(1, name="work", nb_tasks=2)(a)
    c = VoidConsumer(name="sink")(b)
    flow = Flow([a], [c], flow_options={"queue_size": 100})
    stats = {
        "numbers": TaskStats(processed=10, sent=10, busy_seconds=0.1, wall_seconds=1.0, finished=True),
        "work[0]": TaskStats(received=6, processed=6, busy_seconds=0.8, wall_seconds=1.0, queued=50),
        "work[1]": TaskStats(received=4, processed=4, busy_seconds=0.4, wall_seconds=1.0, queued=0),
        # "sink" has not reported yet
    }
    numbers, work, sink = node_stats(flow, stats)
    assert numbers.finished and numbers.queue_fill is None
    assert (work.tasks, work.processed, work.received) == (2, 10, 10)
    assert work.busy_fraction == pytest.approx(0.6)  # the mean of 0.8 and 0.4, not their sum
    assert work.queue_fill == pytest.approx(50 / 200)
    assert not work.finished and work.started
    assert not sink.started and sink.processed == 0

    console, buffer = terminal()
    console.print(LiveDisplay(flow, console=console).render(stats))
    out = buffer.getvalue()
    assert "work \u00d72" in out
    assert "numbers ✓" in out
    assert "sink …" in out  # not started yet
    assert " 60 %" in out and " 25 %" in out  # busy and queue fill of "work"
    assert "dropped" not in out  # a BATCH flow drops nothing


def test_realtime_flows_show_drops() -> None:
    a = CountProducer(10, name="camera")
    b = VoidConsumer(name="sink")(a)
    flow = Flow([a], [b], flow_type=REALTIME)
    stats = {"camera": TaskStats(processed=10, dropped=7, wall_seconds=1.0), "sink": TaskStats(processed=3)}
    console, buffer = terminal()
    console.print(LiveDisplay(flow, console=console).render(stats))
    out = buffer.getvalue()
    assert "dropped" in out
    assert re.search(r"camera\s+10\s+\d+\s+—\s+7\s", out), out


def test_items_per_second_use_a_sliding_window_of_the_task_clock() -> None:
    rate = _Rate(window=1.0)
    assert rate.rate() == 0.0
    rate.add(0.5, 50)
    assert rate.rate() == pytest.approx(100.0)  # one report: the mean so far
    rate.add(0.5, 50)  # the same report again changes nothing
    rate.add(1.0, 100)
    rate.add(1.5, 250)
    rate.add(2.0, 400)
    assert rate.rate() == pytest.approx(300.0)  # (400 - 100) / (2.0 - 1.0)
    rate.add(0.1, 5)  # the clock went back: a new run
    assert rate.rate() == pytest.approx(50.0)


def test_refresh_must_be_positive() -> None:
    with pytest.raises(ValueError, match="refresh"):
        LiveDisplay(small_flow(), refresh=0)


def test_asyncflow_run_can_show_progress_and_the_report() -> None:
    import asyncflow

    flow = small_flow(20)
    buffer = io.StringIO()
    asyncflow.run(flow, progress=True, report=True, console=Console(file=buffer, width=120))
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("asyncflow: finished in ") and "20 of 20 items consumed" in lines[0]
    assert lines[1].startswith("asyncflow bottleneck report (batch flow")
    assert any(line.startswith("Bottleneck: worker is busy") or "No bottleneck" in line for line in lines)
