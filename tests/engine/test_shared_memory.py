"""Big numpy arrays travel through shared-memory slots, intact and never lost."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from asyncflow.consumers import ResultsConsumer
from asyncflow.core import REALTIME, Flow
from asyncflow.engine import shm
from asyncflow.engine.shm import THRESHOLD, SlotPool, SlotReader, dump_frozen, load_frozen
from tests.helpers_arrays import Brighten, Digest, FrameProducer, expected_digest
from tests.helpers_shm import (
    EmitEach,
    KeepFrames,
    PatternFrames,
    check_kept,
    mapped_segments,
    mapping_of,
    odd_arrays,
    pattern,
    segment_name,
    shm_mapped,
    unlinked_but_mapped,
)

np = pytest.importorskip("numpy")
SHAPE = (360, 640, 3)  # 691 200 bytes: above the shared-memory threshold


def digests(path: Path) -> list[tuple[int, int, int, str]]:
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(int(i), int(a), int(b), d) for i, a, b, d in rows]


def shm_segments() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.mark.parametrize("nb_tasks", [1, 2])
async def test_frames_from_a_reused_buffer_arrive_intact_and_in_order(tmp_path: Path, nb_tasks: int) -> None:
    out = tmp_path / "digests.txt"
    before = shm_segments()
    a = FrameProducer(60, SHAPE)
    b = Brighten(nb_tasks=nb_tasks)(a)
    c = Digest(str(out))(b)
    await Flow([a], [c]).run()
    got = digests(out)
    assert [g[0] for g in got] == list(range(60))
    for index, v0, v1, digest in got:
        assert (v0, v1, digest) == expected_digest(index, SHAPE, bump=1), f"frame {index} was changed"
    assert shm_segments() - before == set(), "every slot is unlinked at the end"


async def test_realtime_drops_give_their_slots_back(tmp_path: Path) -> None:
    from tests.helpers import Sleepy

    out = tmp_path / "digests.txt"
    before = shm_segments()
    a = FrameProducer(200, SHAPE)
    b = Sleepy(0.01)(a)
    c = Digest(str(out))(b)
    flow = Flow([a], [c], flow_type=REALTIME, flow_options={"queue_size": 4})
    await flow.run()
    got = digests(out)
    assert flow.stats()[a.name].dropped > 0
    assert len(got) + flow.stats()[a.name].dropped == 200
    for index, v0, v1, digest in got:
        assert (v0, v1, digest) == expected_digest(index, SHAPE, bump=0)
    assert shm_segments() - before == set()


# -- what a received array is, and how long it lives ---------------------------------


def unlike_pickled(got: Any, sent: Any) -> list[str]:
    """How ``got`` differs from what pickling ``sent`` gives: type, dtype (with metadata), shape, order, values.

    Tests assert on what this returns, kept in a local first: pytest prints the
    arrays an assertion or a failing frame names, and reading the memory of an array
    whose mapping is gone would crash the test process.
    """
    want = pickle.loads(pickle.dumps(sent, 5))
    if type(got) is not type(want):
        return [f"a {type(got).__name__} arrived for a {type(want).__name__}"]
    if got.dtype != want.dtype or got.dtype.metadata != want.dtype.metadata:
        return [f"dtype {got.dtype} {got.dtype.metadata} arrived for {want.dtype} {want.dtype.metadata}"]
    problems = []
    if got.shape != want.shape:
        problems.append(f"shape {got.shape} arrived for {want.shape}")
    order = (got.flags.c_contiguous, got.flags.f_contiguous)
    if order != (want.flags.c_contiguous, want.flags.f_contiguous):
        problems.append(f"C/F-contiguous {order} for {(want.flags.c_contiguous, want.flags.f_contiguous)}")
    if got.size and mapping_of(got) is None:
        problems.append("its memory is no longer mapped")
    elif not problems and not np.array_equal(got, want):
        problems.append("its values changed")
    return problems


ODD = odd_arrays()
#: The checks below find an array's mapping in /proc/self/maps (and segments in /dev/shm).
needs_proc_maps = pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="Linux: /proc/self/maps")
ODD_IDS = [f"{k}-{type(a).__name__}-{a.dtype.str}-{a.shape}" for k, a in enumerate(ODD)]


@needs_proc_maps
@pytest.mark.parametrize("k", range(len(ODD)), ids=ODD_IDS)
def test_a_slot_carries_every_dtype_and_layout(k: int, tracker_stopped_after: None) -> None:
    sent = ODD[k]
    pool, reader, released = SlotPool(64 << 20), SlotReader(), []
    try:
        data, slots, shared = dump_frozen((k, sent), pool)
        plain = type(sent) is not np.ndarray or sent.dtype.hasobject or sent.nbytes < THRESHOLD
        # object items (and a subclass) are pickled, never copied as raw bytes
        assert (shared, len(slots)) == ((0, 0) if plain else (sent.nbytes, 1))
        index, got = load_frozen(memoryview(data), reader, released)
        assert index == k
        problems = unlike_pickled(got, sent)
        assert problems == []
        mapped = shm_mapped(got)
        assert mapped == (not plain)
        del got
        gc.collect()
        assert released == slots
    finally:
        reader.close()
        pool.close()


@needs_proc_maps
def test_a_received_array_outlives_the_reader_and_the_pool(tracker_stopped_after: None) -> None:
    shape = (360, 640, 3)
    pool, reader, released = SlotPool(64 << 20), SlotReader(), []
    rows = []
    for i in range(4):
        data, slots, _ = dump_frozen((i, pattern(i, shape)), pool)
        assert len(slots) == 1
        rows.append(load_frozen(memoryview(data), reader, released))
    segments = {segment_name(mapping_of(f) or "") for _, f in rows}
    assert len(segments) == 4 and segments <= shm_segments()
    view = rows[1][1][1:, ::2]  # only a view of frame 1 is kept
    rows[1] = (1, None)
    gc.collect()
    assert released == [], "a view holds its slot: it must not go back to the sender"
    reader.close()  # the stream ended
    pool.close()  # the sender's task ended: every segment is unlinked
    assert not segments & shm_segments()
    gc.collect()
    kept = [(i, f, (slice(None),)) for i, f in rows if f is not None]
    kept.append((1, view, (slice(1, None), slice(None, None, 2))))
    problems = check_kept(kept, shape)
    assert problems == []
    del rows, view, kept
    gc.collect()
    assert sorted(released) == [0, 1, 2, 3]
    assert not segments & mapped_segments(), "a mapping is unmapped once its last array is gone"


@needs_proc_maps
def test_a_reader_without_dev_shm_keeps_its_mapping(
    monkeypatch: pytest.MonkeyPatch, tracker_stopped_after: None
) -> None:
    """Where segments are not files under /dev/shm the reader maps through SharedMemory."""
    exists = os.path.exists
    monkeypatch.setattr(shm.os.path, "exists", lambda path: not str(path).startswith("/dev/shm/") and exists(path))
    pool, reader, released = SlotPool(64 << 20), SlotReader(), []
    try:
        data, _, _ = dump_frozen(pattern(3, (512, 1024)), pool)
        got = load_frozen(memoryview(data), reader, released)
        gc.collect()  # the SharedMemory object it went through is gone
        problems = check_kept([(3, got, (slice(None),))], (512, 1024))
        assert problems == []
    finally:
        reader.close()
        pool.close()
    gc.collect()
    problems = check_kept([(3, got, (slice(None),))], (512, 1024))
    assert problems == []


@needs_proc_maps
async def test_arrays_kept_by_the_host_stay_valid_after_the_run() -> None:
    shape = (720, 1280, 3)
    before = shm_segments()
    a = PatternFrames(20, shape)
    c = ResultsConsumer()(a)
    flow = Flow([a], [c])
    run = asyncio.ensure_future(flow.run())
    items: list[tuple[int, Any]] = []
    async for item in flow.results(c):
        items.append(item)
    del item
    assert [i for i, _ in items] == list(range(20))
    assert all(shm_mapped(f) for _, f in items), "the frames come through shared memory"
    problems = check_kept([(i, f, (slice(None),)) for i, f in items], shape)
    assert problems == []
    segments = {segment_name(mapping_of(f) or "") for _, f in items}
    await run
    # Every task has ended: the senders unlinked their slots and the host's reader is closed.
    assert not segments & shm_segments()
    kept = [(i, f, (slice(None),)) for i, f in items[::2]]
    kept += [(i, f[1:, ::2], (slice(1, None), slice(None, None, 2))) for i, f in items[1::2]]
    del items
    gc.collect()
    problems = check_kept(kept, shape)
    assert problems == []
    await asyncio.sleep(0.2)
    gc.collect()
    problems = check_kept(kept, shape)
    assert problems == []
    del kept
    gc.collect()
    assert not segments & mapped_segments(), "the mappings go with the last arrays"
    assert shm_segments() - before == set()


@needs_proc_maps
async def test_arrays_kept_by_a_task_stay_valid_after_its_channels_close(tmp_path: Path) -> None:
    shape = (360, 640, 3)
    verdict = tmp_path / "verdict.jsonl"
    before = shm_segments()
    a = PatternFrames(20, shape)
    c = KeepFrames(shape, str(verdict))(a)
    await Flow([a], [c]).run()  # KeepFrames.close() raises if a frame changed
    lines = [json.loads(line) for line in verdict.read_text().splitlines()]
    assert [line["when"] for line in lines] == ["close", "exit"], "the task died checking its frames"
    close, exit_ = lines
    assert close["problems"] == [] and close["count"] == 20
    # At exit the task had closed its channels, and the producer had unlinked its slots.
    assert exit_["problems"] == []
    assert exit_["unlinked"] and exit_["names_left"] == []
    assert shm_segments() - before == set()


@needs_proc_maps
async def test_every_dtype_and_layout_crosses_a_flow_intact() -> None:
    a = EmitEach("odd_arrays")
    c = ResultsConsumer()(a)
    flow = Flow([a], [c])
    run = asyncio.ensure_future(flow.run())
    got = [item async for item in flow.results(c)]
    await run
    assert [k for k, _ in got] == list(range(len(ODD)))
    for (k, array), sent in zip(got, ODD, strict=True):
        plain = type(sent) is not np.ndarray or sent.dtype.hasobject or sent.nbytes < THRESHOLD
        mapped = shm_mapped(array)
        assert mapped == (not plain), f"array {k}: {'still' if plain else 'not'} in a shared-memory mapping"
        problems = unlike_pickled(array, sent)
        assert problems == [], f"array {k}"


@needs_proc_maps
def test_a_reader_lets_go_of_slots_its_sender_dropped(tracker_stopped_after: None) -> None:
    """A sender that drops slots to make room for bigger ones: the receiver does not keep them mapped."""
    before = unlinked_but_mapped()
    pool, reader, released = SlotPool(3 << 20), SlotReader(), []
    try:
        for i in range(12):
            shape = (1 + i % 3, 1 << 20)  # 1, 2, 3 MiB: each size pushes out the free slots of the others
            data, _, _ = dump_frozen(pattern(i, shape), pool)
            got = load_frozen(memoryview(data), reader, released)
            problems = check_kept([(i, got, (slice(None),))], shape)
            assert problems == []
            del got
            gc.collect()
            pool.release(released)
            released.clear()
        assert unlinked_but_mapped() - before == set(), "slots the sender unlinked stay mapped"
        assert reader.attached <= 3
    finally:
        reader.close()
        pool.close()


def test_without_room_in_dev_shm_arrays_travel_in_band(
    monkeypatch: pytest.MonkeyPatch, tracker_stopped_after: None
) -> None:
    """A container's /dev/shm is often 64 MiB: a slot that would not fit (writing it would SIGBUS the
    task) is not made, and the array is pickled in-band instead."""
    import asyncflow.engine.shm as shm

    if not shm._DEV_SHM:
        pytest.skip("/dev/shm is Linux's")
    real = os.statvfs

    def full(path: Any) -> Any:
        st = real(path)
        if str(path) != "/dev/shm":
            return st
        return os.statvfs_result((st.f_bsize, st.f_frsize, st.f_blocks, 0, 1 << 20 // st.f_frsize, *st[5:]))

    pool, reader, released = SlotPool(64 << 20), SlotReader(), []
    try:
        monkeypatch.setattr(os, "statvfs", full)  # 1 MiB free
        data, used, shared = dump_frozen(pattern(0, (2, 1 << 20)), pool)
        assert used == [] and shared == 0, "no room: in-band"
        assert (load_frozen(memoryview(data), reader, released) == pattern(0, (2, 1 << 20))).all()
        monkeypatch.setattr(os, "statvfs", real)
        data, used, shared = dump_frozen(pattern(1, (2, 1 << 20)), pool)
        assert len(used) == 1 and shared == 2 << 20, "room again: a slot"
    finally:
        reader.close()
        pool.close()
