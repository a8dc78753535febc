"""REALTIME means fresh items: a leaky queue of one per hop, the newest item for a free node,
capture order kept, a live source never held back, and every item accounted for.

Bounds are generous (a loaded 2-core machine): the old REALTIME kept whole backlogs
(ages of seconds, every frame consumed), which these tests tell apart easily.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncflow.core import BATCH, REALTIME, Flow
from asyncflow.core.options import parse_options
from tests.helpers import CountProducer, Recorder, recorded
from tests.helpers_live import PacedSource, Stamps, Work, charged_drops, stamps

_drops = charged_drops


def _total(drops: dict[str, dict[str, int]]) -> int:
    return sum(n for causes in drops.values() for n in causes.values())


def test_realtime_defaults_are_a_queue_of_one_and_frames_of_one() -> None:
    rt = parse_options(None, realtime=True)
    assert (rt.queue_size, rt.batch_size) == (1, 1)
    batch = parse_options(None)
    assert (batch.queue_size, batch.batch_size) == (1024, 512)
    explicit = parse_options({"queue_size": 16, "batch_size": 4}, realtime=True)
    assert (explicit.queue_size, explicit.batch_size) == (16, 4)


def test_max_age_is_validated() -> None:
    assert parse_options({"max_age": 0.5}).max_age == 0.5
    for bad in (0, -1, "1", True):
        with pytest.raises(ValueError, match="max_age"):
            parse_options({"max_age": bad})


async def test_a_slow_consumer_gets_fresh_frames_and_the_camera_keeps_its_pace(tmp_path: Path) -> None:
    out, late_log = tmp_path / "out.json", tmp_path / "late.json"
    cam = PacedSource(60, fps=30, log=str(late_log), name="cam")  # a 2 s clip
    ident = Work(0.0, name="ident")(cam)
    sink = Stamps(str(out), seconds=0.1, name="sink")(ident)
    flow = Flow([cam], [sink], flow_type=REALTIME)
    await flow.run()
    got = stamps(out)
    ids = [item[0] for item, _ in got]
    ages = [arrived - item[1] for item, arrived in got]
    drops = _drops(flow)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert 8 <= len(got) < 45, ids  # ~20 at 0.1 s a frame: most frames dropped, not queued
    assert max(ages) < 0.5, ages  # the old REALTIME: seconds
    # emitted = consumed + dropped, exactly, every drop charged to a node on the way.
    assert len(got) + _total(drops) == 60, drops
    assert set(drops) <= {"ident", "sink"} and all(set(c) == {"full"} for c in drops.values())
    # The camera never waited for the consumer.
    assert max(json.loads(late_log.read_text())) < 0.25
    # The consumer's ages are in its stats, as measured by the engine.
    sink_stats = flow.stats()["sink"]
    assert sink_stats.aged == len(got) and 0 < sink_stats.age_percentile(50) <= sink_stats.age_max < 0.5


async def test_nb_tasks_in_realtime_takes_more_frames_in_capture_order(tmp_path: Path) -> None:
    kept: dict[int, int] = {}
    for nb in (1, 2):
        out = tmp_path / f"out{nb}.json"
        cam = PacedSource(60, fps=30, name="cam")
        det = Work(0.06, jitter=0.03, nb_tasks=nb, name="det")(cam)
        sink = Stamps(str(out), name="sink")(det)
        flow = Flow([cam], [sink], flow_type=REALTIME)
        await flow.run()
        got = stamps(out)
        ids = [item[0] for item, _ in got]
        drops = _drops(flow)
        assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
        assert len(got) + _total(drops) == 60, drops
        assert max(arrived - item[1] for item, arrived in got) < 0.5
        kept[nb] = len(got)
    assert kept[2] >= 1.3 * kept[1], kept


async def test_workers_finishing_out_of_order_are_dropped_and_counted_as_order(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    cam = PacedSource(120, fps=60, name="cam")
    det = Work(0.005, jitter=0.08, nb_tasks=3, name="det")(cam)  # workers overtake each other
    sink = Stamps(str(out), name="sink")(det)
    flow = Flow([cam], [sink], flow_type=REALTIME)
    await flow.run()
    ids = [item[0] for item, _ in stamps(out)]
    drops = _drops(flow)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len(ids) + _total(drops) == 120, drops
    assert drops.get("det", {}).get("order", 0) > 0, drops


async def test_max_age_drops_stale_items_before_the_work(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(200, name="a")
    slow = Work(0.005, name="slow")(a)
    sink = Recorder(out, name="sink")(slow)
    # BATCH: nothing is lost in transit, so every missing item was stale.
    flow = Flow([a], [sink], flow_type=BATCH, flow_options={"max_age": 0.05, "queue_size": 64, "batch_size": 1})
    await flow.run()
    got = recorded(out)
    drops = _drops(flow)
    assert got == sorted(got)
    assert drops["slow"]["stale"] > 0, drops
    assert len(got) + _total(drops) == 200, drops
    assert set(drops) <= {"slow", "sink"} and all(set(c) == {"stale"} for c in drops.values())


async def test_batch_items_are_aged_too(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(3000, name="a")
    sink = Recorder(out, name="sink")(a)
    flow = Flow([a], [sink])
    await flow.run()
    stats = flow.stats()["sink"]
    assert stats.aged == 3000 and 0 < stats.age_max < 10
    assert _drops(flow) == {}


def test_max_age_on_ray_is_refused_at_flow_time() -> None:
    with pytest.raises(ValueError, match=r"max_age.*ray"):
        parse_options({"engine": "ray", "max_age": 1.0})
