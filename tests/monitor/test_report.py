"""bottleneck_report: the figures per node and the node that limits throughput."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from asyncflow.consumers import VoidConsumer
from asyncflow.core import REALTIME, Flow
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
    assert report.reason.startswith("sink is busy 97 % of the time and can do at most 10.3 items/s (97.0 ms an item)")
    assert "(next: work, 500 items/s)" in report.reason
    assert any("sink skipped 2 items" in note for note in report.notes)


def test_no_node_saturated_means_no_bottleneck() -> None:
    stats = {
        "numbers": TaskStats(processed=10, busy_seconds=0.05, wall_seconds=1.0),
        "work": TaskStats(processed=10, busy_seconds=0.2, wall_seconds=1.0),
        "sink": TaskStats(processed=10, busy_seconds=0.1, wall_seconds=1.0),
    }
    report = bottleneck_report(flow_of(), stats)
    assert report.bottleneck == "work" and not report.saturated
    assert report.reason.startswith("no node is saturated: the slowest, work, is busy only 20 % of the time")
    assert "(it can do 50.0 items/s)" in report.reason
    assert "No bottleneck: " in str(report)
    assert "◀" not in str(report)


def test_a_flow_that_has_not_run_has_nothing_to_report() -> None:
    report = bottleneck_report(flow_of(), {})
    assert report.bottleneck is None
    assert "has not run" in report.reason
    assert [r.items for r in report.rows] == [0, 0, 0]


def test_render_prints_on_the_console() -> None:
    buffer = io.StringIO()
    # The producer's sender counted 3 items that "work" lost: its input queue was full.
    stats = {
        "numbers": TaskStats(processed=10, busy_seconds=0.9, wall_seconds=1.0, dropped=3, drops={"work": {"full": 3}})
    }
    report = bottleneck_report(flow_of(), stats)
    report.render(Console(file=buffer, width=100))
    out = buffer.getvalue()
    assert "asyncflow bottleneck report" in out
    assert "dropped" in out
    assert [(r.name, r.dropped) for r in report.rows] == [("numbers", 0), ("work", 3), ("sink", 0)]
    (note,) = [n for n in report.notes if " lost " in n]
    assert note.startswith("work lost 3 items: 3 full (work could not keep up, and newer items replaced older ")
    assert "numbers" not in note
    assert "the node after it could not keep up" not in out


def test_stats_without_drops_keep_their_drops_on_the_counting_node() -> None:
    stats = {"numbers": TaskStats(processed=10, busy_seconds=0.9, wall_seconds=1.0, dropped=3)}
    report = bottleneck_report(flow_of(), stats)
    assert report.rows[0].dropped == 3 and dict(report.rows[0].drops) == {}
    expected = "numbers lost 3 items: 3 counted by its own tasks, no cause reported"
    assert any(n.startswith(expected) for n in report.notes)


def realtime_flow(max_age: float | None = 0.1) -> Flow:
    a = CountProducer(10, name="camera")
    b = Add(1, name="detector", nb_tasks=2)(a)
    c = VoidConsumer(name="sink")(b)
    return Flow([a], [c], flow_type=REALTIME, flow_options={"max_age": max_age})


def realtime_stats() -> dict[str, TaskStats]:
    return {
        "camera": TaskStats(
            processed=400, busy_seconds=0.1, wall_seconds=2.0, dropped=30, drops={"detector": {"full": 30}}
        ),
        "detector[0]": TaskStats(
            processed=180,
            busy_seconds=1.9,
            wall_seconds=2.0,
            samples=[0.01] * 5,
            dropped=7,
            drops={"detector": {"stale": 3}, "sink": {"full": 4}},
            ages=[0.012, 0.020, 0.040],
            age_max=0.09,
            aged=183,
        ),
        "detector[1]": TaskStats(
            processed=185,
            busy_seconds=1.9,
            wall_seconds=2.0,
            samples=[0.01] * 5,
            dropped=4,
            drops={"detector": {"stale": 2, "order": 2}},
            ages=[0.011, 0.013],
            age_max=0.05,
            aged=187,
        ),
        "sink": TaskStats(
            processed=361, busy_seconds=0.05, wall_seconds=2.0, ages=[0.015, 0.030, 0.045], age_max=0.1, aged=361
        ),
    }


def test_the_report_gives_ages_and_drops_by_cause_per_node() -> None:
    report = bottleneck_report(realtime_flow(), realtime_stats())
    camera, detector, sink = report.rows
    assert (camera.dropped, dict(camera.drops), camera.has_ages) == (0, {}, False)
    assert detector.dropped == 37
    assert dict(detector.drops) == {"full": 30, "stale": 5, "order": 2}
    assert (detector.age_p50, detector.age_p95, detector.age_max, detector.aged) == (
        pytest.approx(0.013),
        pytest.approx(0.040),
        pytest.approx(0.09),
        370,
    )
    assert (sink.dropped, dict(sink.drops)) == (4, {"full": 4})
    assert (sink.age_p50, sink.age_p95, sink.age_max) == (
        pytest.approx(0.030),
        pytest.approx(0.045),
        pytest.approx(0.1),
    )

    text = str(report)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    header = next(line for line in lines if "age p50" in line)
    for column in ("age p50", "age p95", "age max", "dropped", "full", "stale", "order"):
        assert column in header
    assert header.index("dropped") < header.index("full") < header.index("stale") < header.index("order")
    row = next(line for line in lines[lines.index(header) :] if line.strip().startswith("detector"))
    assert row.split() == ["detector", "\u00d72", "13.0", "ms", "40.0", "ms", "90.0", "ms", "37", "30", "5", "2"]
    row = next(line for line in lines[lines.index(header) :] if line.strip().startswith("sink"))
    assert row.split() == ["sink", "30.0", "ms", "45.0", "ms", "100.0", "ms", "4", "4", "—", "—"]
    row = next(line for line in lines[lines.index(header) :] if line.strip().startswith("camera"))
    assert row.split() == ["camera"] + ["—"] * 7  # a producer has no ages; it lost nothing

    notes = " ".join(report.notes)
    assert (
        "detector lost 37 items: 30 full (detector could not keep up, and newer items replaced older ones in its "
        "input queue); 5 stale (older than max_age = 0.1 s when detector would have started on them); 2 order (one "
        "of detector's nb_tasks workers finished them after a newer item had gone on" in notes
    )
    assert "sink lost 4 items: 4 full (sink could not keep up" in notes
    assert "camera lost" not in notes
    assert "age: from the producer's emission to the node starting on the item" in notes


def test_no_ages_and_no_drops_leave_the_second_table_out() -> None:
    stats = {
        "numbers": TaskStats(processed=10, busy_seconds=0.05, wall_seconds=1.0),
        "work": TaskStats(processed=10, busy_seconds=0.2, wall_seconds=1.0),
    }
    text = str(bottleneck_report(flow_of(), stats))
    assert "age p" not in text and "dropped" not in text and "item ages and drops" not in text


def test_ages_without_drops_show_only_the_age_columns() -> None:
    stats = realtime_stats()
    for ts in stats.values():
        ts.dropped, ts.drops = 0, {}
    text = str(bottleneck_report(realtime_flow(max_age=None), stats))
    assert "item ages and drops" in text and "age p95" in text
    assert "dropped" not in text and "stale" not in text


# -- the bottleneck is the node with the lowest max/s; busy % only supports it ---------


def model_flow() -> Flow:
    a = CountProducer(60, name="frames")
    b = Sleepy(0.2, name="model", nb_tasks=4)(a)
    return Flow([a], [VoidConsumer(name="writer")(b)])


def model_stats(items: int = 60) -> dict[str, TaskStats]:
    """frames -> model (4 tasks x 200 ms an item: 20 items/s) -> writer (60 ms an item: 16.7 items/s).

    The whole run fits in the in-flight window: the producer hands every item over at
    once, the model never waits for input nor for room and reads 99 % busy, more than
    the writer that limits the flow.
    """
    per_task = [items // 4 + (1 if i < items % 4 else 0) for i in range(4)]
    stats = {"frames": TaskStats(processed=items, busy_seconds=0.0001 * items, wall_seconds=0.05)}
    for i, n in enumerate(per_task):
        stats[f"model[{i}]"] = TaskStats(
            processed=n, busy_seconds=0.2 * n, wall_seconds=max(0.2 * n / 0.99, 0.5), samples=[0.2] * n
        )
    stats["writer"] = TaskStats(
        processed=items, busy_seconds=0.06 * items, wall_seconds=0.06 * items / 0.95, samples=[0.06] * items
    )
    return stats


def test_the_node_with_the_lowest_max_rate_is_named_not_the_busiest() -> None:
    report = bottleneck_report(model_flow(), model_stats())
    rows = {r.name: r for r in report.rows}
    assert rows["model"].busy_fraction == pytest.approx(0.99) and rows["writer"].busy_fraction == pytest.approx(0.95)
    assert rows["model"].max_items_per_second == pytest.approx(20.0)
    assert rows["writer"].max_items_per_second == pytest.approx(1 / 0.06)
    assert report.bottleneck == "writer" and report.saturated and not report.too_short
    assert report.reason.startswith(
        "writer is busy 95 % of the time and can do at most 16.7 items/s (60.0 ms an item), the lowest max/s in the "
        "flow (next: model, 20.0 items/s): make it faster"
    )
    notes = " ".join(report.notes)
    assert "the whole run (60 items) fits in what one hop holds in flight (2,048 items: queue_size 1,024" in notes
    assert "busy % does not show which node limits the flow; max/s does" in notes
    assert "model was busier (99 %) but can do 20.0 items/s, more than writer's 16.7" in notes
    text = str(report)
    assert "writer ◀" in text and "model \u00d74 ◀" not in text
    assert "Bottleneck: writer is busy 95 %" in text


def test_a_run_with_fewer_than_a_handful_of_items_per_node_is_too_short_to_tell() -> None:
    report = bottleneck_report(model_flow(), model_stats(items=3))
    assert report.too_short and not report.saturated
    assert report.bottleneck == "writer"  # the slowest so far, no more
    assert report.reason.startswith("fewer than 5 items on frames (3), model (3), writer (3): too few to measure")
    assert "so far writer has the lowest max/s, 16.7 items/s" in report.reason
    text = str(report)
    assert "Too short to tell: fewer than 5 items" in text
    assert "◀" not in text and "Bottleneck:" not in text


def camera_flow() -> Flow:
    a = CountProducer(None, 1 / 30, name="camera")
    b = Add(1, name="detector")(a)
    c = VoidConsumer(name="sink")(b)
    return Flow([a], [c], flow_type=REALTIME)


def test_a_paced_source_is_not_the_bottleneck_of_a_slower_consumer() -> None:
    # The camera sleeps in next() (30 fps): 100 % busy.  The sink takes 100 ms an item and drops frames.
    stats = {
        "camera": TaskStats(
            processed=300, busy_seconds=9.99, wall_seconds=10.0, dropped=199, drops={"sink": {"full": 199}}
        ),
        "detector": TaskStats(processed=300, busy_seconds=0.3, wall_seconds=10.0),
        "sink": TaskStats(processed=99, busy_seconds=9.9, wall_seconds=10.0),
    }
    report = bottleneck_report(camera_flow(), stats)
    assert report.bottleneck == "sink" and report.saturated
    assert report.reason.startswith("sink is busy 99 % of the time and can do at most 10.0 items/s (100.0 ms an item)")
    assert "(next: camera, 30.0 items/s)" in report.reason
    assert "a consumer runs as one task" in report.reason
    assert "camera was busier (100 %) but can do 30.0 items/s" in " ".join(report.notes)


def test_a_paced_source_sets_the_pace_only_when_the_others_have_spare_capacity() -> None:
    stats = {
        "camera": TaskStats(processed=300, busy_seconds=9.99, wall_seconds=10.0),
        "detector": TaskStats(processed=300, busy_seconds=3.0, wall_seconds=10.0),  # 100 items/s
        "sink": TaskStats(processed=300, busy_seconds=0.3, wall_seconds=10.0),
    }
    report = bottleneck_report(camera_flow(), stats)
    assert report.bottleneck == "camera" and report.saturated
    assert report.reason.startswith("camera gives at most 30.0 items/s (33.3 ms an item) in next(), the lowest max/s")
    assert "(next: detector, 100 items/s); the other nodes have spare capacity: the source sets the pace" in (
        report.reason
    )

    # A detector that can do 31 items/s keeps up only just: it has no spare capacity, and is named.
    stats["detector"] = TaskStats(processed=300, busy_seconds=300 / 31, wall_seconds=10.0)
    report = bottleneck_report(camera_flow(), stats)
    assert report.bottleneck == "detector" and report.saturated
    assert report.reason.startswith("detector is busy 97 % of the time and can do at most 31.0 items/s")
    assert "barely more than camera gives (30.0 items/s): it has no spare capacity" in report.reason
    assert "camera is close (30.0 items/s against 31.0)" in " ".join(report.notes)
