"""Rows follow the graph's branches: independent parts and a fan-out's branches keep their own pace.

Each test here failed with the single chain (every row visiting every task):
the slow part paced, dropped for or reordered the other.
"""

from __future__ import annotations

from pathlib import Path

from asyncflow.consumers import VoidConsumer
from asyncflow.core import BATCH, REALTIME, Flow
from asyncflow.core.graph import check_graph, route
from asyncflow.processors import IdentityProcessor, JoinerProcessor
from asyncflow.producers import IntProducer
from tests.helpers import CountProducer, Recorder, recorded
from tests.helpers_live import Lists, Mutate, PacedSource, Stamps, Work, charged_drops, stamps

_drops = charged_drops


# -- the routes themselves (no process) --------------------------------------------


def test_a_chain_is_one_route_and_a_fan_out_splits_after_its_source() -> None:
    a = IntProducer(0, 3, name="a")
    b = IdentityProcessor(name="b")(a)
    x = VoidConsumer(name="x")(b)
    y = VoidConsumer(name="y")(a)
    stages = route(check_graph([a], [x, y]))
    by_name = {st.node.name: st for st in stages}
    assert by_name["a"].targets and len(by_name["a"].targets) == 2  # a tee: b's branch and y's
    assert stages[by_name["x"].source].node.name == "b"
    assert stages[by_name["y"].source].node.name == "a"


def test_a_diamond_stays_one_chain_and_independent_parts_are_apart() -> None:
    cam = IntProducer(0, 3, name="cam")
    det = IdentityProcessor(name="det")(cam)
    ann = JoinerProcessor(name="ann")(cam, det)
    out = VoidConsumer(name="out")(ann)
    other = IntProducer(0, 3, name="other")
    sink = VoidConsumer(name="sink")(other)
    stages = route(check_graph([cam, other], [out, sink]))
    by_name = {st.node.name: st for st in stages}
    # det carries cam's frame on to ann: the pair meets in one row.
    assert len(by_name["det"].out_layout) == 2 and by_name["ann"].source == by_name["det"].index
    assert by_name["other"].source == -1 and by_name["sink"].source == by_name["other"].index
    assert all(t != by_name["sink"].index for st in stages if st.node.name != "other" for t, _ in st.targets)


# -- runs ----------------------------------------------------------------------------


async def test_a_slow_source_does_not_pace_an_unrelated_fast_one(tmp_path: Path) -> None:
    slow_out, fast_out = tmp_path / "slow.json", tmp_path / "fast.json"
    slow = CountProducer(3, delay=0.8, name="slow")
    fast = CountProducer(20_000, name="fast")
    x = Stamps(str(slow_out), name="x")(slow)
    y = Stamps(str(fast_out), name="y")(fast)
    await Flow([slow, fast], [x, y]).run()
    got_slow, got_fast = stamps(slow_out), stamps(fast_out)
    assert [item for item, _ in got_fast] == list(range(20_000))
    assert [item for item, _ in got_slow] == [0, 1, 2]
    # The fast stream was through long before the slow one's last item (2.4 s of sleeps).
    assert got_fast[-1][1] < got_slow[-1][1] - 0.8


async def test_realtime_parts_with_no_node_in_common_do_not_drop_for_each_other(tmp_path: Path) -> None:
    slow_out, fast_out = tmp_path / "slow.json", tmp_path / "fast.json"
    a = CountProducer(300, name="a")
    x = Stamps(str(slow_out), seconds=0.01, name="x")(a)
    b = PacedSource(200, fps=400, name="b")
    y = Stamps(str(fast_out), name="y")(b)
    flow = Flow([a, b], [x, y], flow_type=REALTIME, flow_options={"queue_size": 64, "batch_size": 1})
    await flow.run()
    drops = _drops(flow)
    assert [item[0] for item, _ in stamps(fast_out)] == list(range(200)), drops
    assert "y" not in drops
    kept = len(stamps(slow_out))
    assert drops["x"]["full"] > 0 and kept + drops["x"]["full"] == 300


async def test_unordered_workers_reorder_only_their_own_branch(tmp_path: Path) -> None:
    ordered_out, shuffled_out = tmp_path / "x.jsonl", tmp_path / "y.jsonl"
    a = CountProducer(400, name="a")
    x = Recorder(ordered_out, name="x")(a)
    b = CountProducer(400, name="b")
    u = Work(0.0, jitter=0.002, nb_tasks=3, ordered=False, name="u")(b)
    y = Recorder(shuffled_out, name="y")(u)
    await Flow([a, b], [x, y]).run()
    assert recorded(ordered_out) == list(range(400))
    assert sorted(recorded(shuffled_out)) == list(range(400))


async def test_fan_out_fast_branch_does_not_wait_for_the_slow_one_in_batch(tmp_path: Path) -> None:
    slow_out, fast_out = tmp_path / "slow.json", tmp_path / "fast.json"
    cam = CountProducer(100, name="cam")
    slow = Stamps(str(slow_out), seconds=0.02, name="slow")(cam)  # 2 s in all
    fast = Stamps(str(fast_out), name="fast")(cam)
    await Flow([cam], [slow, fast]).run()
    got_slow, got_fast = stamps(slow_out), stamps(fast_out)
    assert [i for i, _ in got_slow] == [i for i, _ in got_fast] == list(range(100))  # BATCH: every item, in order
    assert got_fast[-1][1] < got_slow[-1][1] - 1.0


async def test_realtime_fan_out_recorder_gets_every_frame_while_the_detector_gets_the_newest(tmp_path: Path) -> None:
    det_out, rec_out = tmp_path / "det.json", tmp_path / "rec.json"
    cam = PacedSource(90, fps=60, name="cam")  # 1.5 s
    det = Work(0.1, name="det")(cam)
    det_sink = Stamps(str(det_out), name="det_sink")(det)
    rec = Stamps(str(rec_out), name="rec")(cam)
    flow = Flow([cam], [det_sink, rec], flow_type=REALTIME)
    await flow.run()
    recorded_ids = [item[0] for item, _ in stamps(rec_out)]
    detected = stamps(det_out)
    drops = _drops(flow)
    assert recorded_ids == list(range(90)), drops
    assert set(drops) == {"det"}, drops
    assert len(detected) + drops["det"]["full"] == 90
    assert len(detected) < 40  # 0.1 s a frame over ~1.5 s
    ids = [item[0] for item, _ in detected]
    assert ids == sorted(ids)
    # The detector starts on the newest frame, not on a backlog: well under a second old.
    assert max(arrived - item[1] for item, arrived in detected) < 0.5


async def test_a_branch_that_mutates_its_input_does_not_change_the_other_branch(tmp_path: Path) -> None:
    mutated_out, plain_out = tmp_path / "m.jsonl", tmp_path / "p.jsonl"
    a = Lists(50, name="a")
    m = Recorder(mutated_out, name="m")(Mutate(name="mutate")(a))
    p = Recorder(plain_out, name="p")(a)
    await Flow([a], [m, p], flow_type=BATCH).run()
    assert recorded(plain_out) == [[i] * 4 for i in range(50)]
    assert recorded(mutated_out) == [[-1] * 4] * 50
