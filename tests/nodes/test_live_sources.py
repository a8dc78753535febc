"""Tests for the live sources: ``SyntheticCamera`` and ``VideoFileReader(realtime=True)``, in-process and in flows.

A live source keeps to its clock: early, it waits for the next frame's time; late,
it skips the frames whose time has passed and emits the current one.  Timing
bounds are generous: the suite may share a small, busy machine.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import time
from typing import Any

import numpy as np
import pytest

from asyncflow.consumers import ResultsConsumer
from asyncflow.core import BATCH, Flow, ProcessorNode
from asyncflow.core.errors import NodeConfigError
from asyncflow.producers import SyntheticCamera, VideoFileReader
from asyncflow.video import clip_frame, make_clip

SIZE = (160, 96)  # (width, height) of the clip the file reader plays
CLIP_FPS = 30.0
CLIP_FRAMES = 60  # two seconds at 30 fps


# -- nodes for the flows (module level: pickled into spawned children) ------------


class Stamp(ProcessorNode):
    """``(frame_index, frame)`` -> ``(frame_index, when)``: when the frame came (monotonic, system-wide)."""

    def __init__(self, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def process(self, item: tuple[int, np.ndarray]) -> tuple[int, float]:
        when = time.monotonic()
        if self.delay:
            time.sleep(self.delay)  # a consumer slower than the source
        return int(item[0]), when


# -- helpers --------------------------------------------------------------------------


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


async def run_to_results(flow: Flow, sink: ResultsConsumer) -> list[Any]:
    """Run ``flow`` to its end and return what ``sink`` received."""
    run = asyncio.create_task(flow.run())
    got = [item async for item in flow.results(sink)]
    await asyncio.wait_for(run, 60)
    return got


def assert_increasing(indices: list[int]) -> None:
    assert indices == sorted(set(indices)), f"indices go back or repeat: {indices}"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_clip(tmp_path_factory.mktemp("clips") / "live.avi", nb_frames=CLIP_FRAMES, size=SIZE, fps=CLIP_FPS)


# -- SyntheticCamera, in-process -------------------------------------------------------


async def test_camera_paces_its_frames_at_fps() -> None:
    camera = SyntheticCamera(15, fps=30, size=(64, 48))
    assert camera.len_hint == 15
    camera.open()
    started = time.monotonic()
    items: list[tuple[int, np.ndarray]] = []
    returned: list[float] = []
    for _ in range(15):
        try:
            item = await camera.next()
        except StopAsyncIteration:
            break  # only if a stalled machine made it skip past the end
        returned.append(time.monotonic())
        assert isinstance(item, tuple)
        items.append(item)
    with pytest.raises(StopAsyncIteration):
        await camera.next()
    elapsed = time.monotonic() - started
    camera.close()

    indices = [index for index, _ in items]
    assert_increasing(indices)
    assert indices[0] == 1 and len(indices) >= 12
    assert camera.emitted == len(items) and camera.emitted + camera.skipped == 15
    # Paced: frame k is never handed over before t0 + (k - 1) / fps; 15 frames take >= 14/30 s.
    assert elapsed >= 0.45
    assert elapsed < 5
    for (index, _), when in zip(items, returned, strict=True):
        assert when - started >= (index - 1) / 30 - 0.003
    # The frames are the synthetic clip's, frame k = clip_frame(k - 1).
    for index, frame in items:
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        assert np.array_equal(frame, clip_frame(index - 1, (64, 48)))
    assert 0 <= camera.lateness()["p50"] <= camera.lateness()["p99"] <= camera.lateness()["max"]


async def test_a_slow_caller_makes_the_camera_skip_not_lag() -> None:
    fps = 50.0
    camera = SyntheticCamera(None, fps=fps, size=(32, 32))
    assert camera.len_hint is None  # endless
    camera.open()
    first_call = time.monotonic()
    calls: list[tuple[float, int, float]] = []  # (called, index, returned)
    for _ in range(6):
        called = time.monotonic()
        index, _frame = await camera.next()
        calls.append((called, index, time.monotonic()))
        await asyncio.sleep(0.1)  # the caller is slow: 5 frame periods between calls
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(calls)]
    assert all(gap >= 3 for gap in gaps), gaps  # frames whose time passed are skipped
    assert camera.skipped == calls[-1][1] - camera.emitted
    for called, index, returned in calls:
        # The emitted index is the frame current when the call came, not a backlog.
        assert index - 1 >= int((called - first_call) * fps) - 2, (called - first_call, index)
        assert index - 1 <= (returned - first_call) * fps + 0.5, (returned - first_call, index)

    # Once the caller is fast again the camera goes on from now, paced, without catching up.
    before = time.monotonic()
    quick = [(await camera.next())[0] for _ in range(4)]
    assert quick == list(range(quick[0], quick[0] + 4))
    assert quick[0] - 1 >= int((before - first_call) * fps) - 2
    assert time.monotonic() - before >= 1.9 / fps
    assert camera.lateness()["max"] < 0.5
    camera.close()


async def test_camera_late_past_its_last_frame_stops() -> None:
    camera = SyntheticCamera(3, fps=100, size=(16, 16))
    camera.open()
    assert (await camera.next())[0] == 1
    await asyncio.sleep(0.1)  # frames 2 and 3 were due at 10 and 20 ms
    with pytest.raises(StopAsyncIteration):
        await camera.next()
    assert (camera.emitted, camera.skipped) == (1, 2)
    camera.close()


async def test_camera_without_index_and_with_no_frames() -> None:
    camera = SyntheticCamera(2, fps=200, size=(40, 20), with_index=False)
    camera.open()
    frame = await camera.next()
    assert isinstance(frame, np.ndarray) and frame.shape == (20, 40, 3)
    camera.close()
    empty = SyntheticCamera(0)
    empty.open()
    with pytest.raises(StopAsyncIteration):
        await empty.next()
    empty.close()


async def test_camera_close_logs_its_summary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="asyncflow")
    camera = SyntheticCamera(3, fps=100, size=(16, 16), name="cam")
    camera.open()
    while True:
        try:
            await camera.next()
        except StopAsyncIteration:
            break
    camera.close()
    camera.close()  # a second close logs nothing more
    lines = [r for r in caplog.records if "SyntheticCamera 'cam'" in r.getMessage()]
    assert len(lines) == 1
    message = lines[0].getMessage()
    for part in ("frames emitted", "skipped for lateness", "p50", "p99", "max"):
        assert part in message, message

    caplog.clear()
    late = SyntheticCamera(None, fps=100, size=(16, 16), name="late")
    late.open()
    await late.next()
    await asyncio.sleep(0.05)
    await late.next()
    late.close()
    (record,) = [r for r in caplog.records if "SyntheticCamera 'late'" in r.getMessage()]
    assert record.levelno == logging.WARNING  # frames were skipped
    assert f"{late.skipped} skipped" in record.getMessage()


async def test_camera_next_before_open_says_so() -> None:
    with pytest.raises(RuntimeError, match="SyntheticCamera 'c': next\\(\\) was called before open"):
        await SyntheticCamera(name="c").next()


async def test_camera_pickles_and_starts_afresh() -> None:
    camera = SyntheticCamera(5, fps=200, size=(16, 16), name="cam")
    camera.open()
    await camera.next()
    copy = pickle.loads(pickle.dumps(camera))
    camera.close()
    assert (copy.nb_frames, copy.fps, copy.size, copy.name) == (5, 200.0, (16, 16), "cam")
    copy.open()
    assert (await copy.next())[0] == 1
    copy.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nb_frames": -1}, "nb_frames must be >= 0"),
        ({"nb_frames": 2.5}, "nb_frames must be an int"),
        ({"nb_frames": True}, "nb_frames must be an int"),
        ({"fps": 0}, "fps must be > 0"),
        ({"fps": -30}, "fps must be > 0"),
        ({"fps": "30"}, "fps must be a finite number"),
        ({"fps": float("inf")}, "fps must be a finite number"),
        ({"size": (8, 8)}, "each at least 16"),
        ({"size": (640,)}, "size must be a pair"),
        ({"size": (640.5, 360)}, "must be an int"),
        ({"with_index": 1}, "with_index must be True or False"),
    ],
)
def test_camera_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(NodeConfigError, match=f"SyntheticCamera 'cam': .*{match}"):
        SyntheticCamera(**kwargs, name="cam")


# -- VideoFileReader(realtime=True), in-process ---------------------------------------


def test_realtime_reader_plays_at_the_files_frame_rate(clip: str) -> None:
    reader = VideoFileReader(clip, nb_frames=15, realtime=True)
    assert reader.len_hint == 15
    reader.open()
    started = time.monotonic()
    items: list[tuple[int, np.ndarray]] = []
    while True:
        try:
            index, frame = reader.next()
        except StopIteration:
            break
        items.append((index, frame.copy()))  # the reader reuses its buffer
    elapsed = time.monotonic() - started
    reader.close()
    indices = [index for index, _ in items]
    assert_increasing(indices)
    assert indices[0] == 1 and indices[-1] <= 15 and len(indices) >= 12
    assert len(indices) + reader.skipped == indices[-1]
    assert elapsed >= 0.45  # frame 15 is due 14/30 s after the first
    assert elapsed < 5
    for index, frame in items:  # the file's own frame, decoded
        assert mean_error(frame, clip_frame(index - 1, SIZE)) < 8


def test_a_slow_caller_makes_the_realtime_reader_skip_not_lag(clip: str) -> None:
    reader = VideoFileReader(clip, realtime=True)
    reader.open()
    first_call = time.monotonic()
    calls: list[tuple[float, int, float]] = []
    for _ in range(5):
        called = time.monotonic()
        index, frame = reader.next()
        calls.append((called, index, time.monotonic()))
        # Skipped frames were grabbed, not lost track of: the frame is the one its index names.
        assert mean_error(frame, clip_frame(index - 1, SIZE)) < 8
        time.sleep(0.15)  # 4.5 frame periods
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(calls)]
    assert all(gap >= 3 for gap in gaps), gaps
    assert reader.skipped == calls[-1][1] - len(calls)
    for called, index, returned in calls:
        assert index - 1 >= int((called - first_call) * CLIP_FPS) - 2, (called - first_call, index)
        assert index - 1 <= (returned - first_call) * CLIP_FPS + 0.5, (returned - first_call, index)
    # The file runs out on the clock too: past its 2 s nothing is left to emit.
    time.sleep(max(0.0, first_call + CLIP_FRAMES / CLIP_FPS + 0.1 - time.monotonic()))
    with pytest.raises(StopIteration):
        reader.next()
    reader.close()


def test_the_default_reader_neither_waits_nor_skips(clip: str) -> None:
    reader = VideoFileReader(clip, nb_frames=5)
    reader.open()
    indices = []
    for _ in range(5):
        indices.append(reader.next()[0])
        time.sleep(0.05)
    reader.close()
    assert indices == [1, 2, 3, 4, 5]
    assert reader.skipped == 0


def test_realtime_reader_close_logs_its_summary(clip: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="asyncflow")
    reader = VideoFileReader(clip, nb_frames=8, realtime=True, name="rt")
    reader.open()
    reader.next()
    time.sleep(0.12)
    reader.next()
    reader.close()
    reader.close()
    records = [r for r in caplog.records if "VideoFileReader 'rt'" in r.getMessage()]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert f"2 frames emitted, {reader.skipped} skipped for lateness" in records[0].getMessage()
    assert reader.skipped >= 2


def test_realtime_reader_pickles_with_its_setting(clip: str) -> None:
    reader = VideoFileReader(clip, nb_frames=2, realtime=True, name="rt")
    copy = pickle.loads(pickle.dumps(reader))
    assert copy.realtime is True and VideoFileReader(clip).realtime is False
    copy.open()
    assert copy.next()[0] == 1
    copy.close()


class _NoRateCapture:
    """A capture that opens but declares no frame rate."""

    def isOpened(self) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        pass


class _NoRateReader(VideoFileReader):
    def _open_capture(self) -> Any:
        return _NoRateCapture()


def test_realtime_reader_needs_a_frame_rate(clip: str) -> None:
    with pytest.raises(OSError, match=r"_NoRateReader 'r': .* declares no frame rate"):
        _NoRateReader(clip, realtime=True, name="r").open()
    plain = _NoRateReader(clip, name="r")
    plain.open()  # without realtime the rate is not needed
    plain.close()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_realtime_must_be_a_bool(clip: str, value: Any) -> None:
    with pytest.raises(NodeConfigError, match="VideoFileReader 'r': realtime must be True or False"):
        VideoFileReader(clip, realtime=value, name="r")


# -- in flows (BATCH: every emitted frame reaches the consumer) -------------------------


async def test_camera_in_a_flow_is_paced() -> None:
    camera = SyntheticCamera(15, fps=30, size=(64, 48), name="camera")
    stamp = Stamp(name="stamp")(camera)
    sink = ResultsConsumer(name="sink")(stamp)
    flow = Flow([camera], [sink], flow_type=BATCH)
    got = await run_to_results(flow, sink)
    indices = [index for index, _ in got]
    assert_increasing(indices)
    assert indices[0] == 1 and indices[-1] <= 15 and len(indices) >= 12
    assert flow.stats()["camera"].processed == len(got)
    span = got[-1][1] - got[0][1]
    assert span >= 0.85 * (indices[-1] - indices[0]) / 30, (span, indices)


async def test_realtime_reader_in_a_flow_is_paced(clip: str) -> None:
    reader = VideoFileReader(clip, nb_frames=15, realtime=True, name="reader")
    stamp = Stamp(name="stamp")(reader)
    sink = ResultsConsumer(name="sink")(stamp)
    flow = Flow([reader], [sink], flow_type=BATCH)
    got = await run_to_results(flow, sink)
    indices = [index for index, _ in got]
    assert_increasing(indices)
    assert indices[0] == 1 and indices[-1] <= 15 and len(indices) >= 12
    span = got[-1][1] - got[0][1]
    assert span >= 0.85 * (indices[-1] - indices[0]) / CLIP_FPS, (span, indices)


async def test_a_slow_consumer_in_a_flow_makes_the_camera_skip() -> None:
    # Small queues: the camera feels the slow stage's backpressure after a few frames,
    # then skips to the current frame each time it may send again.
    camera = SyntheticCamera(30, fps=30, size=(32, 32), name="camera")
    slow = Stamp(delay=0.1, name="slow")(camera)
    sink = ResultsConsumer(name="sink")(slow)
    flow = Flow([camera], [sink], flow_type=BATCH, flow_options={"queue_size": 1, "batch_size": 1})
    got = await run_to_results(flow, sink)
    indices = [index for index, _ in got]
    assert_increasing(indices)
    assert len(indices) < 25, indices  # the slow stage handles ~10 a second for ~1 s
    assert max(b - a for a, b in itertools.pairwise(indices)) >= 2, indices  # frames were skipped
    assert indices[-1] >= 20, indices  # and the camera kept to its clock to the end
