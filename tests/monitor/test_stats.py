"""node_stats: drops charged to the node that lost them, by cause; item ages per node (stats built by hand)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from asyncflow.consumers import VoidConsumer
from asyncflow.core import REALTIME, Flow
from asyncflow.engine.spec import DROP_CAUSES, TaskStats
from asyncflow.monitor import node_stats
from asyncflow.monitor.stats import age_text, cause_order, drops_text
from tests.helpers import Add, CountProducer


def camera_flow() -> Flow:
    """camera -> detector (2 tasks) -> sink."""
    a = CountProducer(10, name="camera")
    b = Add(1, name="detector", nb_tasks=2)(a)
    c = VoidConsumer(name="sink")(b)
    return Flow([a], [c], flow_type=REALTIME)


def test_drops_are_charged_to_the_node_that_lost_them_whichever_task_counted_them() -> None:
    stats = {
        # The camera's sender found the detector's queue full: the detector lost those items.
        "camera": TaskStats(processed=100, dropped=30, drops={"detector": {"full": 30}}),
        "detector[0]": TaskStats(processed=30, dropped=7, drops={"detector": {"stale": 3}, "sink": {"full": 4}}),
        "detector[1]": TaskStats(processed=30, dropped=3, drops={"detector": {"stale": 2, "order": 1}}),
        "sink": TaskStats(processed=52, dropped=1, drops={"sink": {"stale": 1}}),
    }
    camera, detector, sink = node_stats(camera_flow(), stats)
    # The camera counted 30 drops, but lost none itself.
    assert (camera.dropped, camera.drops) == (0, {})
    assert detector.drops == {"full": 30, "stale": 5, "order": 1}
    assert list(detector.drops) == ["full", "stale", "order"]  # in DROP_CAUSES order
    assert detector.dropped == 36
    assert sink.drops == {"full": 4, "stale": 1}
    assert sink.dropped == 5
    assert sum(ns.dropped for ns in (camera, detector, sink)) == sum(ts.dropped for ts in stats.values())


def test_drops_keyed_by_a_task_name_go_to_its_node_and_unknown_names_are_ignored() -> None:
    stats = {
        "camera": TaskStats(
            dropped=6, drops={"detector[1]": {"full": 2}, "detector": {"full": 3}, "gone": {"full": 1}}
        ),
        "detector[0]": TaskStats(drops={"detector": {"order": 0}}),  # zero counts are left out
    }
    _, detector, sink = node_stats(camera_flow(), stats)
    assert detector.drops == {"full": 5}
    assert detector.dropped == 5
    assert (sink.dropped, sink.drops) == (0, {})


@dataclass
class LegacyStats:
    """Stats as older engines report them: a ``dropped`` count and none of the new fields."""

    received: int = 0
    processed: int = 0
    skipped: int = 0
    dropped: int = 0
    sent: int = 0
    busy_seconds: float = 0.0
    wall_seconds: float = 0.0
    queued: int = 0
    samples: list[float] = field(default_factory=list)
    finished: bool = False

    @property
    def busy_fraction(self) -> float:
        return self.busy_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def test_stats_without_drops_charge_their_drops_to_the_task_own_node() -> None:
    stats = {
        "camera": LegacyStats(processed=10, dropped=7, wall_seconds=1.0),
        "detector[0]": TaskStats(processed=3, dropped=2),  # a TaskStats whose engine fills no ``drops``
        "sink": LegacyStats(processed=3, wall_seconds=1.0),
    }
    camera, detector, sink = node_stats(camera_flow(), stats)
    assert (camera.dropped, camera.drops) == (7, {})
    assert (detector.dropped, detector.drops) == (2, {})
    assert (sink.ages, sink.age_max, sink.aged, sink.age_percentile(95)) == ([], 0.0, 0, 0.0)
    assert drops_text(camera.dropped, camera.drops) == "7"


def test_drops_with_and_without_a_cause_add_up() -> None:
    # A task that counted more than its ``drops`` hold: the rest is charged to its own node.
    stats = {"camera": TaskStats(dropped=10, drops={"detector": {"full": 6}})}
    camera, detector, _ = node_stats(camera_flow(), stats)
    assert (camera.dropped, camera.drops, camera.unattributed_drops) == (4, {}, 4)
    assert (detector.dropped, detector.unattributed_drops) == (6, 0)


def test_ages_of_a_node_are_its_tasks_ages_together() -> None:
    stats = {
        "camera": TaskStats(processed=100),
        "detector[0]": TaskStats(ages=[0.03, 0.01, 0.02], age_max=0.2, aged=100),
        "detector[1]": TaskStats(ages=[0.05, 0.04], age_max=0.06, aged=50),
        "sink": TaskStats(ages=[0.5], age_max=0.0, aged=1),  # age_max lagging behind its ages
    }
    camera, detector, sink = node_stats(camera_flow(), stats)
    assert (camera.ages, camera.aged) == ([], 0)
    assert sorted(detector.ages) == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert detector.age_max == pytest.approx(0.2)
    assert detector.aged == 150
    assert detector.age_percentile(0) == pytest.approx(0.01)
    assert detector.age_percentile(50) == pytest.approx(0.03)
    assert detector.age_percentile(95) == pytest.approx(0.05)
    assert detector.age_percentile(100) == pytest.approx(0.05)
    assert sink.age_max == pytest.approx(0.5)


def test_drops_text_gives_the_total_then_the_causes() -> None:
    assert drops_text(35, {"stale": 5, "full": 30}) == "35 (full 30, stale 5)"
    assert drops_text(1234, {"order": 1234}) == "1,234 (order 1,234)"
    assert drops_text(8, {"full": 5}) == "8 (full 5, other 3)"
    assert drops_text(7, {}) == "7"
    assert drops_text(0, {"full": 0}) == "0"
    assert drops_text(35, {"full": 30, "stale": 5}, " dropped") == "35 dropped (full 30, stale 5)"
    assert sorted(["order", "zzz", "stale", "full"], key=cause_order) == [*DROP_CAUSES, "zzz"]


def test_age_text_is_short() -> None:
    assert age_text(0.00085) == "850 µs"
    assert age_text(0.0042) == "4.2 ms"
    assert age_text(0.012) == "12 ms"
    assert age_text(0.4) == "400 ms"
    assert age_text(1.25) == "1.25 s"
    assert age_text(12.34) == "12.3 s"
