"""bottleneck_report: the figures per node and the node that limits throughput."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from asyncflow.consumers import VoidConsumer
from asyncflow.core import Flow
from asyncflow.engine.spec import TaskStats
from asyncflow.monitor import bottleneck_report
from tests.helpers import Add, CountProducer, Sleepy


async def test_the_sleepy_node_is_named_the_bottleneck() -> None:
    a = CountProducer(60, name="numbers")
    b = Sleepy(0.01, name="sleepy")(a)
    c = Add(1, name="fast")(b)
    d = VoidConsumer(name="sink")(c)
    flow = Flow([a], [d])
    await flow.run()
    report = bottleneck_report(flow)
    assert report.bottleneck == "sleepy"
    assert report.saturated
    assert report.reason.startswith("sleepy is busy ")
    assert "give it more tasks or make it faster" in report.reason
    rows = {r.name: r for r in report.rows}
    assert [r.name for r in report.rows] == ["numbers", "sleepy", "fast", "sink"]
    assert all(r.items == 60 for r in report.rows)
    assert rows["sleepy"].mean_seconds == pytest.approx(0.01, rel=0.5)
    assert rows["sleepy"].p95_seconds >= 0.009
    assert rows["sleepy"].busy_fraction > 2 * max(rows[n].busy_fraction for n in ("numbers", "fast", "sink"))
    text = str(report)
    assert "sleepy ◀" in text
    assert "Bottleneck: sleepy is busy" in text
    for header in ("items/s", "mean", "p95", "busy", "wait", "max/s"):
        assert header in text


def flow_of(nb_tasks: int = 1) -> Flow:
    a = CountProducer(10, name="numbers")
    b = Add(1, name="work", nb_tasks=nb_tasks)(a)
    return Flow([a], [VoidConsumer(name="sink")(b)])


def test_several_tasks_count_by_their_mean_busy_fraction() -> None:
    flow = flow_of(nb_tasks=3)
    stats = {
        "numbers": TaskStats(processed=300, busy_seconds=0.6, wall_seconds=1.0, samples=[0.002] * 10),
        "work[0]": TaskStats(processed=100, busy_seconds=0.5, wall_seconds=1.0, samples=[0.005] * 10),
        "work[1]": TaskStats(processed=100, busy_seconds=0.5, wall_seconds=1.0, samples=[0.005] * 10),
        "work[2]": TaskStats(processed=100, busy_seconds=0.5, wall_seconds=1.0, samples=[0.005] * 10),
        "sink": TaskStats(processed=300, busy_seconds=0.1, wall_seconds=1.0),
    }
    # Summed, "work" would be 150 % busy; per task it is 50 %, less than the producer's 60 %.
    report = bottleneck_report(flow, stats)
    assert report.bottleneck == "numbers"
    assert "the source sets the pace" in report.reason
    work = report.rows[1]
    assert (work.tasks, work.items, work.busy_fraction) == (3, 300, pytest.approx(0.5))
    assert work.max_items_per_second == pytest.approx(600.0)  # 3 tasks / 5 ms an item

    stats["work[1]"] = TaskStats(processed=100, busy_seconds=0.95, wall_seconds=1.0)
    stats["work[2]"] = TaskStats(processed=100, busy_seconds=0.95, wall_seconds=1.0)
    report = bottleneck_report(flow, stats)
    assert report.bottleneck == "work"
    assert report.reason.startswith("work's 3 tasks are busy 80 % of the time on average")
    assert "nb_tasks > 3" in report.reason
    assert "work \u00d73 ◀" in str(report)


def test_a_slow_consumer_is_told_to_hand_work_to_a_processor() -> None:
    stats = {
        "numbers": TaskStats(processed=10, busy_seconds=0.01, wall_seconds=1.0),
        "work": TaskStats(processed=10, busy_seconds=0.02, wall_seconds=1.0),
        "sink": TaskStats(processed=10, busy_seconds=0.97, wall_seconds=1.0, skipped=2),
    }
    report = bottleneck_report(flow_of(), stats)
    assert report.bottleneck == "sink"
    assert "a consumer runs as one task" in report.reason
    assert "(next busiest: work, 2 %)" in report.reason
    assert any("sink skipped 2 items" in note for note in report.notes)


def test_no_node_saturated_means_no_bottleneck() -> None:
    stats = {
        "numbers": TaskStats(processed=10, busy_seconds=0.05, wall_seconds=1.0),
        "work": TaskStats(processed=10, busy_seconds=0.2, wall_seconds=1.0),
        "sink": TaskStats(processed=10, busy_seconds=0.1, wall_seconds=1.0),
    }
    report = bottleneck_report(flow_of(), stats)
    assert report.bottleneck == "work" and not report.saturated
    assert report.reason.startswith("no node is saturated: the busiest, work, is busy only 20 %")
    assert "No bottleneck: " in str(report)
    assert "◀" not in str(report)


def test_a_flow_that_has_not_run_has_nothing_to_report() -> None:
    report = bottleneck_report(flow_of(), {})
    assert report.bottleneck is None
    assert "has not run" in report.reason
    assert [r.items for r in report.rows] == [0, 0, 0]


def test_render_prints_on_the_console() -> None:
    buffer = io.StringIO()
    stats = {"numbers": TaskStats(processed=10, busy_seconds=0.9, wall_seconds=1.0, dropped=3)}
    bottleneck_report(flow_of(), stats).render(Console(file=buffer, width=100))
    out = buffer.getvalue()
    assert "asyncflow bottleneck report" in out
    assert "dropped" in out
    assert "numbers dropped 3 items" in out
