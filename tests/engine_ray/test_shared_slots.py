"""Shared slots between Ray actors on one machine (``engine/ray_slots.py``): big arrays cross the chain
with one plain copy, slots are used again once nothing reads them, nothing is ever written under an
array a node (or ``flow.results()``) still holds, and nothing is left in /dev/shm."""

from __future__ import annotations

import asyncio
import gc
import glob
import json
import mmap
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from asyncflow.consumers import ResultsConsumer
from asyncflow.core import REALTIME, ConsumerNode, Flow, FlowKilledError, ProcessorNode
from asyncflow.engine import ray_slots
from asyncflow.engine.ray_slots import SlotGroup, SlotLedger, SlotLoader, SlotWriter
from tests.engine_ray.test_code_resources_arrays import Frames

ray = pytest.importorskip("ray")
np = pytest.importorskip("numpy")

SHAPE = (512, 512, 4)  # 1 MiB: a slot of its own


def stamp(i: int) -> Any:
    """Frame ``i``: every byte is ``i % 251``, and its first row holds ``i`` in full (as uint32s)."""
    frame = np.full(SHAPE, i % 251, np.uint8)
    frame[0].reshape(-1).view(np.uint32)[:] = i
    return frame


def index_of(frame: Any) -> int:
    return int(frame[0].reshape(-1).view(np.uint32)[0])


def whole(frame: Any) -> bool:
    i = index_of(frame)
    return bool((frame[0].reshape(-1).view(np.uint32) == i).all() and (frame[1:] == i % 251).all())


def shm_segments() -> set[str]:
    return set(glob.glob("/dev/shm/psm_*")) | set(glob.glob("/dev/shm/afray_*"))


class Stamped(Frames):
    """``n`` frames of ``SHAPE`` from one reused buffer, frame ``i`` being ``stamp(i)``."""

    shape = SHAPE

    def fill(self, i: int) -> Any:
        return stamp(i)


class Keeper(ProcessorNode):
    """Keeps every frame it is given and checks, at every call, that none of them has changed."""

    def open(self) -> None:
        self.kept: list[tuple[int, Any]] = []

    def process(self, frame: Any) -> Any:
        self.kept.append((index_of(frame), frame))
        for i, old in self.kept:
            if index_of(old) != i or not whole(old):
                raise AssertionError(f"frame {i} changed under the node that keeps it")
        return frame


class Sees(ConsumerNode):
    """Writes, for each frame: its index, whether it is whole, read-only, in a slot (a mapping of
    /dev/shm), and which mapping (slots used again share one)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def open(self) -> None:
        self.lines: list[str] = []

    def consume(self, frame: Any) -> None:
        base = frame.base
        seen = [index_of(frame), whole(frame), bool(frame.flags.writeable), isinstance(base, mmap.mmap), id(base)]
        self.lines.append(json.dumps(seen))

    def close(self) -> None:
        Path(self.path).write_text("\n".join(self.lines))


def seen(path: Path) -> list[list[Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Passes(ProcessorNode):
    """Passes its frame on as it came (the same slot goes on)."""

    def process(self, frame: Any) -> Any:
        return frame


@pytest.mark.parametrize("nb_tasks", [1, 2])
async def test_frames_cross_in_slots_used_again_whole_and_read_only(
    ray_session: None, tmp_path: Path, nb_tasks: int
) -> None:
    """With two workers each batch goes down the chain in two parts: its slots are free after both."""
    before = shm_segments()
    out = tmp_path / "seen.jsonl"
    a = Stamped(200)
    c = Sees(str(out))(Passes(nb_tasks=nb_tasks)(a))
    options = {"engine": "ray", "max_bytes_in_flight": 8 << 20}  # slots: 40 MiB at most
    await asyncio.wait_for(Flow([a], [c], flow_options=options).run(), 120)
    got = seen(out)
    assert [g[0] for g in got] == list(range(200))
    assert all(g[1] for g in got), "every frame arrives whole"
    assert not any(g[2] for g in got), "read-only, as from the object store"
    assert all(g[3] for g in got), "one machine: every frame in a slot, not the object store"
    mappings = len({g[4] for g in got})
    assert mappings <= 40, f"slots are used again: 200 frames in {mappings} slots"
    assert shm_segments() - before == set(), "the owner unlinks its slots"


class Slow(ProcessorNode):
    """Takes 10 ms a frame and passes it on."""

    def process(self, frame: Any) -> Any:
        time.sleep(0.01)
        return frame


async def test_realtime_drops_give_their_slots_back(ray_session: None, tmp_path: Path) -> None:
    """REALTIME drops what a full window cannot take: the dropped batches' slots are used again."""
    out = tmp_path / "seen.jsonl"
    a = Stamped(300)
    c = Sees(str(out))(Slow()(a))
    flow = Flow([a], [c], flow_type=REALTIME, flow_options={"engine": "ray"})
    await asyncio.wait_for(flow.run(), 120)
    got = seen(out)
    indices = [g[0] for g in got]
    assert indices == sorted(set(indices)) and all(g[1] for g in got) and all(g[3] for g in got)
    assert flow.stats()[a.name].dropped == 300 - len(got) > 0
    assert len({g[4] for g in got}) <= 10, "a handful of slots, used again and again"


async def test_a_node_that_keeps_its_frames_keeps_their_slots(ray_session: None, tmp_path: Path) -> None:
    """With a budget of a few slots, a node that keeps all 60 frames holds every slot: later frames go
    through the object store, and no kept frame is ever written over (the keeper checks at each call)."""
    out = tmp_path / "seen.jsonl"
    a = Stamped(60)
    c = Sees(str(out))(Keeper(name="keeper")(a))
    options = {"engine": "ray", "max_bytes_in_flight": 1 << 20}  # slots: 5 MiB at most
    await asyncio.wait_for(Flow([a], [c], flow_options=options).run(), 120)
    got = seen(out)
    assert [g[0] for g in got] == list(range(60)) and all(g[1] for g in got)
    kinds = Counter(g[3] for g in got)
    assert kinds[True] and kinds[False], f"some in slots, the rest through the object store: {kinds}"
    assert kinds[True] <= 5, kinds


async def test_results_in_slots_stay_whole_after_the_run(ray_session: None) -> None:
    """The driver reads a ResultsConsumer's frames from the slots; arrays kept past the end of the run
    (their owner has unlinked the slots) stay valid and unchanged."""
    before = shm_segments()
    a = Stamped(50)
    c = ResultsConsumer()(Passes()(a))
    flow = Flow([a], [c], flow_options={"engine": "ray"})
    run = asyncio.ensure_future(flow.run())
    kept = [frame async for frame in flow.results(c)]
    await asyncio.wait_for(run, 120)
    assert [index_of(f) for f in kept] == list(range(50)) and all(whole(f) for f in kept)
    assert sum(isinstance(f.base, mmap.mmap) for f in kept) == 50
    assert not any(f.flags.writeable for f in kept)
    assert shm_segments() - before == set()
    del kept
    gc.collect()


class Stuck(ProcessorNode):
    """Never returns from its first frame (stop(timeout) has to kill it)."""

    def process(self, frame: Any) -> Any:
        time.sleep(3600)


async def test_actors_killed_hard_unlink_their_slots_first(ray_session: None) -> None:
    """stop(timeout) expires on a node stuck in process(): the producer, which filled slots meanwhile,
    unlinks them from its control thread before Ray kills it (Ray kills a dying worker's children, the
    resource tracker that would have unlinked them among them)."""
    before = shm_segments()
    a = Stamped(10_000)
    c = Sees("/dev/null")(Stuck()(a))
    flow = Flow([a], [c], flow_options={"engine": "ray", "max_bytes_in_flight": 8 << 20})
    run = asyncio.ensure_future(flow.run())
    deadline = time.monotonic() + 60
    while not [s for s in shm_segments() - before if "afray_" in s]:
        assert time.monotonic() < deadline and not run.done(), "the producer never filled a slot"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    flow.stop(timeout=1)
    with pytest.raises(FlowKilledError):
        await asyncio.wait_for(run, 60)
    assert shm_segments() - before == set()


def test_a_new_owner_sweeps_the_slots_of_owners_that_are_gone(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = int(gone.stdout), os.getpid()
    mark = f"afray_{ray_slots._namespace()}_"
    names = [f"{mark}{dead}_0", f"{mark}{dead}_7", f"{mark}{alive}_0", f"afray_1_{dead}_0", "psm_1234"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert sorted(ray_slots.sweep(str(tmp_path))) == names[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:]), "the living's, and other namespaces'"


# -- the ledger, in one process ------------------------------------------------------------
def test_a_slot_is_free_once_its_batch_has_left_and_every_view_is_gone() -> None:
    ledger = SlotLedger()
    group = SlotGroup()
    ledger.made(group, 3, [7, 8])
    ledger.counted([(3, 7), (3, 7), (3, 8)], [(3, 7)])  # two readers of 7, one let go; one of 8, kept
    assert ledger.due(3) == ()
    ledger.finished(group)
    assert ledger.due(3) == (), "both still viewed"
    ledger.counted([], [(3, 7)])
    assert ledger.due(3) == (7,)
    assert ledger.due(3) == (), "handed over once"
    ledger.counted([], [(3, 8)])
    assert ledger.due(3) == (8,)
    assert ledger.viewed == 0


def test_views_gone_before_the_batch_leaves_free_the_slot_when_it_leaves() -> None:
    ledger = SlotLedger()
    group = SlotGroup()
    ledger.made(group, 1, [0])
    ledger.counted([(1, 0)], [(1, 0)])
    assert ledger.due(1) == (), "the batch is still in the chain: a later stage may read it"
    ledger.finished(group)
    assert ledger.due(1) == (0,)


def test_a_batch_in_parts_frees_its_slots_after_the_last_part() -> None:
    ledger = SlotLedger()
    group = SlotGroup()
    ledger.made(group, 0, [1, 2])
    group.left = 2
    ledger.made(group, 5, [9])  # a processor of the second part filled one of its own
    ledger.finished(group)
    assert ledger.due(0) == () and ledger.due(5) == ()
    ledger.finished(group)
    assert ledger.due(0) == (1, 2) and ledger.due(5) == (9,)


def test_a_dropped_batch_frees_its_slots_at_once() -> None:
    ledger = SlotLedger()
    group = SlotGroup()
    ledger.made(group, 0, [4])
    group.left = 3
    ledger.finished(group, dropped=True)
    assert ledger.due(0) == (4,)


def test_the_drivers_own_views_count(tracker_stopped_after: None) -> None:
    """A slot the driver read (a ResultsConsumer's input) is free only once the driver let go of it."""
    writer = SlotWriter(owner=2, budget=8 << 20)
    try:
        ref = writer.put(stamp(5))
        assert ref is not None and writer.take_made() == (ref.sid,)
        ledger = SlotLedger()
        group = SlotGroup()
        ledger.made(group, 2, [ref.sid])
        array = ledger.loader.load(ref)
        assert index_of(array) == 5 and whole(array) and not array.flags.writeable
        view = array[10:20]
        del array
        ledger.finished(group)
        assert ledger.due(2) == (), "a view of it is still held"
        del view
        ledger.counted((), ())
        assert ledger.due(2) == (ref.sid,)
    finally:
        writer.close()


def test_a_loader_counts_loads_and_releases(tracker_stopped_after: None) -> None:
    writer = SlotWriter(owner=0, budget=8 << 20)
    loader = SlotLoader()
    try:
        assert writer.put(np.zeros(100, np.uint8)) is None, "small arrays are not worth a slot"
        ref = writer.put(stamp(1))
        assert ref is not None
        a, b = loader.load(ref), loader.load(ref)
        assert loader.take() == (((0, ref.sid), (0, ref.sid)), ())
        del a
        assert loader.take() == ((), ((0, ref.sid),))
        del b
        assert loader.take() == ((), ((0, ref.sid),))
    finally:
        loader.close()
        writer.close()
