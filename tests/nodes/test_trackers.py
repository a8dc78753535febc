"""Tests for the trackers (SORT's KalmanFilterBoundingBoxTracker) on synthetic moving boxes, in-process and in flows."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import numpy as np
import pytest

pytest.importorskip("lap")

from asyncflow.consumers import ResultsConsumer
from asyncflow.core import Flow
from asyncflow.core.errors import NodeConfigError
from asyncflow.processors import BoundingBoxTracker, KalmanFilterBoundingBoxTracker, TrackerAnnotator
from asyncflow.processors.vision.trackers import iou_matrix
from asyncflow.producers import IterableProducer


def box(cx: float, cy: float, width: float = 40, height: float = 40, score: float = 0.9) -> list[float]:
    """A detection row [ymin, xmin, ymax, xmax, class_index, score] centred on (cx, cy)."""
    return [cy - height / 2, cx - width / 2, cy + height / 2, cx + width / 2, 0, score]


def dets(*rows: list[float]) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 6)


def tracker(**kwargs: Any) -> KalmanFilterBoundingBoxTracker:
    node = KalmanFilterBoundingBoxTracker(**kwargs)
    node.open()
    return node


def ids(tracks: np.ndarray) -> list[int]:
    return [int(i) for i in tracks[:, 4]]


def centre_x(tracks: np.ndarray, track_id: int) -> float:
    row = tracks[tracks[:, 4] == track_id][0]
    return float(row[1] + row[3]) / 2


# -- the basics ------------------------------------------------------------------------------


def test_one_moving_object_keeps_its_id_and_is_followed() -> None:
    node = tracker()
    for t in range(30):
        detection = box(50 + 6 * t, 100)
        out = node.process(dets(detection))
        assert out.shape == (1, 5) and out.dtype == np.float64
        assert ids(out) == [1]
        assert np.abs(out[0, :4] - detection[:4]).max() < 6, "the filtered box stays on the detection"
    assert np.abs(out[0, :4] - box(50 + 6 * 29, 100)[:4]).max() < 1, "once the velocity is learnt: on it"


def test_the_output_layout_and_empty_inputs() -> None:
    node = tracker(min_hits=1)
    for empty in (None, [], np.zeros((0, 6), np.float32), np.zeros((0, 5))):
        out = node.process(empty)
        assert out.shape == (0, 5) and out.dtype == np.float64
    out = node.process(np.array([box(20, 20)[:4]]))  # four columns are enough
    assert out.shape == (1, 5)


def test_a_new_object_gets_a_new_id_once_it_has_min_hits() -> None:
    node = tracker(min_hits=3)
    reported: list[list[int]] = []
    for t in range(20):
        rows = [box(50 + 5 * t, 60)]
        if t >= 10:
            rows.append(box(400 - 5 * (t - 10), 300))
        reported.append(ids(node.process(dets(*rows))))
    assert reported[:10] == [[1]] * 10
    assert reported[10:12] == [[1], [1]], "the newcomer is matched in 1, then 2 frames: not yet reported"
    assert reported[12:] == [[1, 2]] * 8, "from its third frame on it is reported, with the next id"


def test_every_detection_is_reported_during_the_first_min_hits_frames() -> None:
    node = tracker(min_hits=3)
    assert ids(node.process(dets(box(50, 50), box(200, 50)))) == [1, 2]
    assert ids(node.process(dets(box(52, 50), box(202, 50), box(400, 300)))) == [1, 2, 3]


def test_min_hits_one_reports_every_track_at_once() -> None:
    node = tracker(min_hits=1)
    for _ in range(5):
        node.process(dets(box(50, 50)))
    assert ids(node.process(dets(box(50, 50), box(300, 300)))) == [1, 2]


def test_a_spurious_detection_is_never_reported_and_takes_no_id_from_a_track() -> None:
    node = tracker(min_hits=3)
    for t in range(10):
        node.process(dets(box(50 + 4 * t, 50)))
    out = node.process(dets(box(90, 50), box(300, 300)))  # a one-frame false alarm far away
    assert ids(out) == [1]
    for t in range(11, 15):
        assert ids(node.process(dets(box(50 + 4 * t, 50)))) == [1]


# -- tracks that are missed ------------------------------------------------------------------


def test_a_track_survives_max_age_missed_frames() -> None:
    node = tracker(max_age=3)
    for t in range(10):
        node.process(dets(box(50 + 6 * t, 100)))
    for _ in range(3):  # missed 3 frames: max_age
        assert node.process(dets()).shape == (0, 5), "a missed track is not reported"
        assert node.nb_live_tracks == 1
    out = node.process(dets(box(50 + 6 * 13, 100)))  # back where its velocity says it would be
    assert ids(out) == [1], "back within max_age frames: same id, reported at once (it was confirmed)"


def test_a_track_ends_after_it_is_missed_for_more_than_max_age_frames() -> None:
    node = tracker(max_age=3)
    for t in range(10):
        node.process(dets(box(50 + 6 * t, 100)))
    for missed in range(4):
        node.process(dets())
        assert node.nb_live_tracks == (1 if missed < 3 else 0), "gone on the 4th missed frame"
    for t in range(14, 17):
        node.process(dets(box(50 + 6 * t, 100)))
    assert ids(node.process(dets(box(50 + 6 * 17, 100)))) == [2], "it came back too late: a new id"


def test_max_age_zero_ends_a_track_on_its_first_miss() -> None:
    node = tracker(max_age=0, min_hits=1)
    node.process(dets(box(50, 50)))
    node.process(dets())
    assert node.nb_live_tracks == 0
    assert ids(node.process(dets(box(50, 50)))) == [2]


# -- several objects ---------------------------------------------------------------------------


def test_crossing_objects_keep_their_ids() -> None:
    node = tracker(min_hits=3, max_age=3)
    a_ids, b_ids = set(), set()
    for t in range(60):
        a = box(40 + 8 * t, 100)  # left to right
        b = box(520 - 8 * t, 112)  # right to left, 12 px lower: they overlap heavily as they cross
        out = node.process(dets(b, a) if t % 2 else dets(a, b))  # the detector's order means nothing
        assert len(out) == 2
        left_to_right = ids(out)[int(np.argmin([abs(centre_x(out, i) - (40 + 8 * t)) for i in ids(out)]))]
        a_ids.add(left_to_right)
        b_ids.add(({1, 2} - {left_to_right}).pop())
    assert a_ids == {1} and b_ids == {2}, "each object kept its id through the crossing"


def test_crossing_objects_of_the_same_size_at_the_same_height_keep_their_ids() -> None:
    # Head-on: at the crossing the two detections coincide; the velocities carry the ids through.
    node = tracker()
    history: dict[int, list[float]] = {1: [], 2: []}
    for t in range(40):
        out = node.process(dets(box(100 + 10 * t, 200), box(490 - 10 * t, 200)))
        for track_id in ids(out):
            history[track_id].append(centre_x(out, track_id))
    assert all(np.diff(history[1]) > 0), "track 1 moved right all along"
    assert all(np.diff(history[2]) < 0), "track 2 moved left all along"


def test_many_objects_with_jitter_keep_their_ids() -> None:
    rng = np.random.default_rng(7)
    starts = [(60 + 110 * i, 50 + 70 * (i % 3)) for i in range(6)]
    velocities = [(3 - i, 1 + (i % 2)) for i in range(6)]
    node = tracker()
    first: list[int] | None = None
    for t in range(50):
        rows = [
            box(x + vx * t + rng.normal(0, 1), y + vy * t + rng.normal(0, 1), 36 + rng.normal(0, 1), 48)
            for (x, y), (vx, vy) in zip(starts, velocities, strict=True)
        ]
        order = rng.permutation(len(rows))
        out = node.process(dets(*[rows[i] for i in order]))
        assert len(out) == 6
        # Each track's box is nearest the same object in every frame.
        nearest = [
            int(np.argmin([abs(centre_x(out, track_id) - (r[1] + r[3]) / 2) for r in rows])) for track_id in ids(out)
        ]
        if first is None:
            first = nearest
        assert ids(out) == [1, 2, 3, 4, 5, 6]
        assert nearest == first


# -- inputs, configuration, the base class -------------------------------------------------------


def test_bad_detections() -> None:
    node = tracker(name="trk")
    with pytest.raises(ValueError, match=r"KalmanFilterBoundingBoxTracker 'trk': detection 1 holds a NaN"):
        node.process(dets(box(10, 10), [np.nan, 0, 5, 5, 0, 1]))
    with pytest.raises(ValueError, match=r"'trk': detections must have shape \(nb_boxes, 6\)"):
        node.process(np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"'trk': detections must be an \(nb_boxes, 6\) array"):
        node.process("boxes")
    flat = dets([10, 10, 10, 30, 0, 1], [10, 10, 30, 10, 0, 1], box(100, 100))  # no height, no width, a box
    assert len(node.process(flat)) == 1, "boxes without area are left out"


def test_constructor_checks() -> None:
    with pytest.raises(NodeConfigError, match="max_age must be >= 0"):
        KalmanFilterBoundingBoxTracker(max_age=-1)
    with pytest.raises(NodeConfigError, match="iou_threshold must be > 0"):
        KalmanFilterBoundingBoxTracker(iou_threshold=0)
    with pytest.raises(NodeConfigError, match="iou_threshold must be above 0 and at most 1"):
        KalmanFilterBoundingBoxTracker(iou_threshold=1.5)
    with pytest.raises(NodeConfigError, match="metric_function_type 'euclidean' is not supported"):
        KalmanFilterBoundingBoxTracker(metric_function_type="euclidean")
    node = KalmanFilterBoundingBoxTracker(max_age=7, min_hits=3, iou_threshold=0.3)
    assert node.nb_tasks == 1
    with pytest.raises(NodeConfigError, match="one-task processor"):
        node.nb_tasks = 2


def test_iou_threshold_gates_the_matches() -> None:
    # A jump that leaves IoU 1/3 with the track: matched under 0.3, a new track above it.
    loose, strict = tracker(iou_threshold=0.3, min_hits=1), tracker(iou_threshold=0.4, min_hits=1)
    for node in (loose, strict):
        node.process(dets(box(100, 100)))
    assert ids(loose.process(dets(box(120, 100)))) == [1]
    assert ids(strict.process(dets(box(120, 100)))) == [2]


def test_it_works_without_open_and_pickles_with_its_configuration() -> None:
    node = KalmanFilterBoundingBoxTracker(max_age=2, min_hits=1, name="t")
    assert ids(node.process(dets(box(50, 50)))) == [1], "the solver is imported on first use too"
    copy = pickle.loads(pickle.dumps(node))
    assert (copy.max_age, copy.min_hits, copy.name) == (2, 1, "t")
    copy.open()
    assert ids(copy.process(dets(box(300, 300)))) == [1], "open() starts afresh"


def test_the_base_class_calls_track() -> None:
    class Echo(BoundingBoxTracker):
        def _track(self, dets: Any) -> np.ndarray:
            out = np.zeros((len(dets), 5))
            out[:, :4] = np.asarray(dets)[:, :4]
            out[:, 4] = np.arange(1, len(dets) + 1)
            return out

    assert Echo().process(dets(box(10, 10)))[0, 4] == 1
    with pytest.raises(NotImplementedError, match="BoundingBoxTracker must implement _track"):
        BoundingBoxTracker().process(dets())


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 20]], float)
    b = np.array([[0, 5, 10, 15], [20, 20, 30, 30], [0, 0, 0, 0]], float)
    assert iou_matrix(a, b) == pytest.approx(np.array([[1 / 3, 0, 0], [0.5, 0, 0]]))


def test_the_tracker_annotator_draws_the_ids() -> None:
    node = tracker(min_hits=1)
    tracks = node.process(dets(box(60, 60), box(200, 120)))
    drawn = TrackerAnnotator(box_color=(0, 255, 0)).process(np.zeros((240, 320, 3), np.uint8), tracks)
    green = (drawn[:, :, 1] == 255) & (drawn[:, :, 0] == 0)
    assert green[40, 40:80].all() and green[100, 180:220].all(), "the boxes' top edges"
    text = drawn[:38, 40:80].max(axis=2) > 0
    assert text.any(), "the id is written above the first box"


# -- in a flow -----------------------------------------------------------------------------------


async def test_in_a_flow() -> None:
    frames = [dets(box(50 + 5 * t, 60), box(300 - 5 * t, 200)) for t in range(12)]
    source = IterableProducer(frames)
    node = KalmanFilterBoundingBoxTracker(min_hits=2)(source)
    sink = ResultsConsumer()(node)
    flow = Flow([source], [sink])
    run = asyncio.create_task(flow.run())
    got = [item async for item in flow.results(sink)]
    await asyncio.wait_for(run, 60)
    assert [ids(tracks) for tracks in got] == [[1, 2]] * 12
