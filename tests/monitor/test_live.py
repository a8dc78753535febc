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
    assert "age p50" not in out  # and has measured no ages here


def test_realtime_flows_show_drops_on_the_node_that_lost_them() -> None:
    a = CountProducer(10, name="camera")
    b = VoidConsumer(name="sink")(a)
    flow = Flow([a], [b], flow_type=REALTIME)
    # The camera's sender counted 7 items the sink lost (its queue was full).
    stats = {
        "camera": TaskStats(processed=10, dropped=7, drops={"sink": {"full": 7}}, wall_seconds=1.0),
        "sink": TaskStats(processed=3, wall_seconds=1.0),
    }
    console, buffer = terminal()
    console.print(LiveDisplay(flow, console=console).render(stats))
    out = buffer.getvalue()
    assert "dropped" in out
    assert "age p50/p95" in out  # always shown in REALTIME
    assert re.search(r"camera\s+10\s+\d+\s+—\s+0\s", out), out
    assert re.search(r"sink\s+3\s+\d+\s+\S+\s+\d+ %\s+7 \(full 7\)\s+—\s", out), out


def realtime_flow(max_age: float | None = None) -> Flow:
    a = CountProducer(10, name="camera")
    b = Add(1, name="detector", nb_tasks=2)(a)
    c = VoidConsumer(name="sink")(b)
    return Flow([a], [c], flow_type=REALTIME, flow_options={"max_age": max_age})


def realtime_stats() -> dict[str, TaskStats]:
    return {
        "camera": TaskStats(processed=400, dropped=30, drops={"detector": {"full": 30}}, wall_seconds=2.0),
        "detector[0]": TaskStats(
            processed=180,
            dropped=3,
            drops={"detector": {"stale": 3}},
            wall_seconds=2.0,
            ages=[0.012, 0.020, 0.040],
            age_max=0.09,
            aged=183,
        ),
        "detector[1]": TaskStats(
            processed=185,
            dropped=2,
            drops={"detector": {"stale": 2}},
            wall_seconds=2.0,
            ages=[0.011, 0.013],
            age_max=0.05,
            aged=187,
        ),
        "sink": TaskStats(processed=365, wall_seconds=2.0, ages=[0.015, 0.030, 0.045], age_max=0.1, aged=365),
    }


def test_the_table_shows_ages_and_drops_by_cause() -> None:
    flow = realtime_flow()
    console, buffer = terminal()
    console.print(LiveDisplay(flow, console=console).render(realtime_stats()))
    out = buffer.getvalue()
    header = next(line for line in out.splitlines() if "node" in line and "done" in line)
    assert header.index("dropped") < header.index("age p50/p95") < header.index("busy")
    names = ("camera", "detector", "sink")
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip().startswith(names)}
    # Ages: detector's tasks together [11, 12, 13, 20, 40] ms; a producer has none.
    assert "13 ms / 40 ms" in rows["detector"]
    assert "30 ms / 45 ms" in rows["sink"]
    assert re.search(r"\s0\s+—\s", rows["camera"]), rows["camera"]
    # Drops: the 30 the camera counted and the 5 stale ones its tasks counted, all lost by the detector.
    assert "35 (full 30, stale 5)" in rows["detector"]
    assert "(full" not in rows["camera"] and "(full" not in rows["sink"]


def test_a_batch_flow_shows_ages_once_there_are_some_and_drops_only_when_there_are_some() -> None:
    a = CountProducer(10, name="numbers")
    b = Add(1, name="work")(a)
    flow = Flow([a], [VoidConsumer(name="sink")(b)])
    stats = {
        "numbers": TaskStats(processed=10, wall_seconds=1.0),
        "work": TaskStats(processed=10, wall_seconds=1.0, ages=[0.0042] * 4, aged=10),
        "sink": TaskStats(processed=10, wall_seconds=1.0, ages=[0.25, 1.5], aged=10),
    }
    console, buffer = terminal()
    console.print(LiveDisplay(flow, console=console).render(stats))
    out = buffer.getvalue()
    assert "age p50/p95" in out
    assert "4.2 ms / 4.2 ms" in out
    assert "250 ms / 1.50 s" in out
    assert "dropped" not in out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 100  # still a narrow table

    stats["work"] = TaskStats(processed=8, wall_seconds=1.0, dropped=2, drops={"work": {"stale": 2}})
    console, buffer = terminal()
    console.print(LiveDisplay(flow, console=console).render(stats))
    out = buffer.getvalue()
    assert "dropped" in out and "2 (stale 2)" in out  # max_age drops in BATCH too


def test_an_age_past_max_age_is_red() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system="standard")
    console.print(LiveDisplay(realtime_flow(max_age=0.042), console=console).render(realtime_stats()))
    out = buffer.getvalue()
    sink = next(line for line in out.splitlines() if "sink" in line)
    detector = next(line for line in out.splitlines() if "detector" in line)
    assert "\x1b[31m30 ms / 45 ms" in sink  # p95 45 ms > 42 ms
    assert "\x1b[31m13 ms / 40 ms" not in detector


async def test_the_summary_line_gives_the_consumers_age_and_the_drops_by_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow = realtime_flow()
    stats = realtime_stats()
    monkeypatch.setattr(flow, "stats", lambda: stats)
    buffer = io.StringIO()
    display = LiveDisplay(flow, console=Console(file=buffer, width=120))
    display.start()
    summary = display.stop("finished")
    assert buffer.getvalue().strip() == summary
    assert "365 items consumed" in summary
    assert "age p95 sink 45 ms" in summary
    assert "35 dropped (full 30, stale 5)" in summary
    assert "detector" not in summary.split("age p95")[1]  # only consumers' ages


async def test_the_summary_line_of_a_realtime_flow_without_drops_or_ages() -> None:
    flow = realtime_flow()
    buffer = io.StringIO()
    display = LiveDisplay(flow, console=Console(file=buffer, width=120))
    display.start()
    summary = display.stop("failed")
    assert summary.endswith("; 0 dropped")
    assert "age" not in summary


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
