"""Multi-object trackers: detections in, boxes with stable track ids out (videoflow's ``vision.trackers``).

``BoundingBoxTracker`` is videoflow's base: a one-task processor (a tracker keeps
state from frame to frame, so it must see every frame, in order) whose
``process(dets)`` returns ``self._track(dets)``.  Detections come in the
detectors' layout, an ``(nb_boxes, 6)`` array of
``[ymin, xmin, ymax, xmax, class_index, score]`` (only the first four columns are
read); tracks go out as an ``(nb_tracks, 5)`` ``float64`` array of
``[ymin, xmin, ymax, xmax, track_id]``, what ``TrackerAnnotator`` draws.

``KalmanFilterBoundingBoxTracker`` is SORT (Bewley et al., "Simple Online and
Realtime Tracking", 2016), as videoflow and videoflow-contrib ship it: each track
is a constant-velocity Kalman filter over the box's centre, area and aspect ratio
(SORT's model and noise settings); every frame the tracks are predicted forward,
detections are assigned to tracks by maximum total IoU with the predicted boxes
(pairs below ``iou_threshold`` are never assigned), matched tracks are corrected,
unmatched detections start new tracks.

Library choices:

- Assignment: ``lap.lapjv`` (the ``lap`` package, in the ``video`` extra), the
  Jonker-Volgenant solver, exact, in C++: the solver SORT's reference code tries
  first, and the one ByteTrack and Ultralytics' trackers use.  It is small (2.4 MB
  installed, numpy its only dependency) and imports in milliseconds, where
  ``scipy.optimize.linear_sum_assignment`` (the same algorithm family) would add
  scipy (140 MB installed) and half a second of CPU to every tracker's start-up
  for importing ``scipy.optimize``.  videoflow used scikit-learn's
  ``linear_assignment``, since removed from scikit-learn.  ``lap`` is imported
  when the node opens.
- Kalman filter: a small one here, in NumPy, rather than filterpy (SORT's and
  videoflow's choice).  The model is fixed and linear: predict and update are a
  few matrix products, written here over all tracks at once (one ``(n, 7)`` state
  array, one ``(n, 7, 7)`` covariance array), where filterpy keeps one filter
  object per track and a Python loop per frame; and filterpy requires scipy and
  matplotlib.  The update uses the Joseph form, as filterpy does.

Where this differs from SORT's reference code, on purpose:

- a track's first detection counts as a hit: a track is *confirmed* once it has
  been matched in ``min_hits`` consecutive frames, its first included (SORT
  needs ``min_hits + 1``);
- a confirmed track stays confirmed: it is reported on every frame it is matched
  in, also right after frames where it was missed (SORT hides it again until a
  new streak of ``min_hits``);
- pairs below ``iou_threshold`` are left out of the assignment rather than
  dropped after it, so they cannot push a valid pair out.

As in SORT, during the first ``min_hits`` frames of the stream every matched
track is reported, confirmed or not (there is no history yet to wait for), and
the box reported is the filter's estimate after the frame's detection, not the
detection itself (smoother, a little behind a box that changes size fast).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, OnError
from asyncflow.processors.onetask import OneTaskProcessorNode
from asyncflow.video._common import check_int, check_real

__all__ = ["BoundingBoxTracker", "KalmanFilterBoundingBoxTracker", "iou_matrix"]

Tracks = npt.NDArray[np.float64]
FloatArray = npt.NDArray[np.float64]

# SORT's constant-velocity model.  State [cx, cy, s, r, vcx, vcy, vs] (centre, area,
# aspect ratio w/h, and the velocities of the first three); measurement [cx, cy, s, r].
_F = np.eye(7)
_F[0, 4] = _F[1, 5] = _F[2, 6] = 1.0
_H = np.eye(4, 7)
_R = np.diag([1.0, 1.0, 10.0, 10.0])
_Q = np.diag([1.0, 1.0, 1.0, 1.0, 0.01, 0.01, 0.0001])
_P0 = np.diag([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4])  # unobserved velocities: very uncertain
_I7 = np.eye(7)


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU of every box of ``a`` (``(n, 4)``) with every box of ``b`` (``(m, 4)``), ``[ymin, xmin, ymax, xmax]``."""
    ymin = np.maximum(a[:, None, 0], b[None, :, 0])
    xmin = np.maximum(a[:, None, 1], b[None, :, 1])
    ymax = np.minimum(a[:, None, 2], b[None, :, 2])
    xmax = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ymax - ymin, 0, None) * np.clip(xmax - xmin, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: FloatArray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return out


def _to_z(boxes: FloatArray) -> FloatArray:
    """``[ymin, xmin, ymax, xmax]`` boxes as measurements ``[cx, cy, area, w / h]``."""
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    return np.stack(
        [boxes[:, 1] + width / 2, boxes[:, 0] + height / 2, width * height, width / height], axis=1
    )


def _to_boxes(x: FloatArray) -> FloatArray:
    """States (or measurements) as ``[ymin, xmin, ymax, xmax]`` boxes; NaN where area x ratio < 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        width = np.sqrt(x[:, 2] * x[:, 3])
        height = x[:, 2] / width
    return np.stack([x[:, 1] - height / 2, x[:, 0] - width / 2, x[:, 1] + height / 2, x[:, 0] + width / 2], axis=1)


class BoundingBoxTracker(OneTaskProcessorNode):
    """Base of the trackers (videoflow's): ``process(dets)`` returns ``self._track(dets)``.

    ``dets``: the detections of one frame, ``(nb_boxes, 6)``
    ``[ymin, xmin, ymax, xmax, class_index, score]``.  ``_track`` returns the
    tracks, ``(nb_tracks, 5)`` ``[ymin, xmin, ymax, xmax, track_id]``.  It must be
    called once for every frame, in order, frames without detections included: a
    tracker is a one-task node (``nb_tasks`` is always 1).
    """

    def _track(self, dets: Any) -> Tracks:
        raise NotImplementedError(f"{type(self).__name__} must implement _track(dets)")

    def process(self, dets: Any) -> Tracks:
        """Return the tracks after this frame's detections."""
        return self._track(dets)


class KalmanFilterBoundingBoxTracker(BoundingBoxTracker):
    """SORT: Kalman-filtered boxes, IoU assignment (see the module docstring for the model and the choices).

    - ``max_age`` (7, videoflow's default): how many consecutive frames a track
      may go unmatched and still be continued; it ends on the next frame it is
      missed.  An object that comes back within ``max_age`` frames keeps its id;
      one that comes back later gets a new id.
    - ``min_hits`` (3): the consecutive matches, the first detection included,
      before a track is reported (except in the stream's first ``min_hits``
      frames, as in SORT); 1 or 0 reports every track from its first frame.
    - ``iou_threshold`` (0.3, SORT's; videoflow's code used 0.1): the least IoU
      between a detection and a track's predicted box for them to be matched,
      above 0 and at most 1.

    Each frame returns the tracks matched in it (new ones included once
    reported), ``[ymin, xmin, ymax, xmax, track_id]`` in ``float64``, by track id;
    ids start at 1 and are never reused within a run.  A detection with a NaN or
    infinite coordinate raises ``ValueError`` naming the node; one whose height or
    width is not positive is ignored (it has no aspect ratio to track).
    ``metric_function_type`` is accepted for videoflow's signature; only
    ``"iou"`` is supported.  Needs ``lap`` (in the ``video`` extra).
    """

    def __init__(
        self,
        max_age: int = 7,
        min_hits: int = 3,
        iou_threshold: float = 0.3,
        device_type: DeviceType = "cpu",
        *,
        metric_function_type: str = "iou",
        name: str | None = None,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(device_type, name=name, on_error=on_error)
        owner = self.describe()
        self.max_age = check_int(owner, "max_age", max_age, 0)
        self.min_hits = check_int(owner, "min_hits", min_hits, 0)
        self.iou_threshold = check_real(owner, "iou_threshold", iou_threshold, 0, strict=True)
        if self.iou_threshold > 1:
            raise NodeConfigError(f"{owner}: iou_threshold must be above 0 and at most 1, got {iou_threshold}")
        if metric_function_type != "iou":
            raise NodeConfigError(
                f"{owner}: metric_function_type {metric_function_type!r} is not supported; only 'iou' is"
            )
        self.metric_function_type = metric_function_type
        self._reset()

    def _reset(self) -> None:
        self._assign: Any = None
        self._frame_count = 0
        self._next_id = 1
        self._x = np.zeros((0, 7))
        self._p = np.zeros((0, 7, 7))
        self._ids = np.zeros(0, dtype=np.int64)
        self._since_update = np.zeros(0, dtype=np.int64)
        self._streak = np.zeros(0, dtype=np.int64)
        self._confirmed = np.zeros(0, dtype=bool)

    def open(self) -> None:
        """Start with no tracks (ids from 1); import the assignment solver."""
        self._reset()
        self._assign = _assignment_solver(self.describe())

    @property
    def nb_live_tracks(self) -> int:
        """How many tracks are alive (matched lately, or coasting for at most ``max_age`` frames)."""
        return int(self._ids.size)

    def _detections(self, dets: Any) -> FloatArray:
        """``dets``'s first four columns as a float array; rows without a positive height and width left out."""
        owner = self.describe()
        if dets is None:
            return np.zeros((0, 4))
        try:
            array = np.asarray(dets, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{owner}: detections must be an (nb_boxes, 6) array of "
                f"[ymin, xmin, ymax, xmax, class_index, score], got {type(dets).__name__}"
            ) from None
        if array.size == 0:
            return np.zeros((0, 4))
        if array.ndim != 2 or array.shape[1] < 4:
            raise ValueError(
                f"{owner}: detections must have shape (nb_boxes, 6) of "
                f"[ymin, xmin, ymax, xmax, class_index, score], got {array.shape}"
            )
        boxes = array[:, :4]
        finite = np.isfinite(boxes).all(axis=1)
        if not finite.all():
            index = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"{owner}: detection {index} holds a NaN or infinite value: {boxes[index].tolist()}")
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return np.array(boxes[valid])

    def _predict(self) -> FloatArray:
        """Move every track one frame forward; return the predicted boxes (tracks that went invalid removed)."""
        x = self._x
        shrinking = x[:, 6] + x[:, 2] <= 0
        x[shrinking, 6] = 0.0  # an area about to go negative stops shrinking
        self._x = x @ _F.T
        self._p = _F @ self._p @ _F.T + _Q
        self._streak[self._since_update > 0] = 0
        self._since_update += 1
        boxes = _to_boxes(self._x)
        valid = np.asarray(np.isfinite(boxes).all(axis=1), dtype=bool)
        if not valid.all():
            self._keep(valid)
            boxes = boxes[valid]
        return boxes

    def _update(self, tracks: npt.NDArray[np.intp], z: FloatArray) -> None:
        """Correct the ``tracks`` with their measurements ``z`` (Joseph-form update, all at once)."""
        x, p = self._x[tracks], self._p[tracks]
        residual = z - x[:, :4]
        s = p[:, :4, :4] + _R
        gain = p[:, :, :4] @ np.linalg.inv(s)
        self._x[tracks] = x + (gain @ residual[:, :, None])[:, :, 0]
        factor = _I7 - gain @ _H
        self._p[tracks] = factor @ p @ factor.transpose(0, 2, 1) + gain @ _R @ gain.transpose(0, 2, 1)
        self._since_update[tracks] = 0
        self._streak[tracks] += 1

    def _add(self, z: FloatArray) -> None:
        count = z.shape[0]
        x = np.zeros((count, 7))
        x[:, :4] = z
        self._x = np.concatenate([self._x, x])
        self._p = np.concatenate([self._p, np.broadcast_to(_P0, (count, 7, 7))])
        self._ids = np.concatenate([self._ids, np.arange(self._next_id, self._next_id + count)])
        self._next_id += count
        self._since_update = np.concatenate([self._since_update, np.zeros(count, dtype=np.int64)])
        self._streak = np.concatenate([self._streak, np.ones(count, dtype=np.int64)])
        self._confirmed = np.concatenate([self._confirmed, np.zeros(count, dtype=bool)])

    def _keep(self, mask: npt.NDArray[np.bool_]) -> None:
        self._x, self._p, self._ids = self._x[mask], self._p[mask], self._ids[mask]
        self._since_update, self._streak = self._since_update[mask], self._streak[mask]
        self._confirmed = self._confirmed[mask]

    def _match(self, boxes: FloatArray, predicted: FloatArray) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Detection and track indices of the matched pairs: the assignment of greatest total IoU above the gate."""
        if boxes.shape[0] == 0 or predicted.shape[0] == 0:
            empty = np.zeros(0, dtype=np.intp)
            return empty, empty
        iou = iou_matrix(boxes, predicted)
        gated = np.where(iou >= self.iou_threshold, iou, 0.0)
        if self._assign is None:
            self._assign = _assignment_solver(self.describe())
        # Least total cost -IoU (pairs below the gate cost 0: never worth taking), rectangular allowed.
        _cost, row_to_col, _col_to_row = self._assign(-gated, extend_cost=True)
        rows = np.flatnonzero(row_to_col >= 0)
        cols = row_to_col[rows].astype(np.intp)
        good = gated[rows, cols] > 0
        return rows[good], cols[good]

    def _track(self, dets: Any) -> Tracks:
        """One frame: predict, assign, correct, start new tracks, end old ones; return the reported tracks."""
        boxes = self._detections(dets)
        self._frame_count += 1
        predicted = self._predict()
        det_index, track_index = self._match(boxes, predicted)
        z = _to_z(boxes)
        if track_index.size:
            self._update(track_index, z[det_index])
        unmatched = np.ones(boxes.shape[0], dtype=bool)
        unmatched[det_index] = False
        if unmatched.any():
            self._add(z[unmatched])
        self._confirmed |= self._streak >= self.min_hits
        matched = self._since_update == 0
        report = np.flatnonzero(matched & (self._confirmed | (self._frame_count <= self.min_hits)))
        estimates = _to_boxes(self._x[report])
        finite = np.isfinite(estimates).all(axis=1)  # an estimate may degenerate; its track goes on
        report, estimates = report[finite], estimates[finite]
        order = np.argsort(self._ids[report], kind="stable")
        out = np.empty((report.size, 5))
        out[:, :4] = estimates[order]
        out[:, 4] = self._ids[report][order]
        alive: npt.NDArray[np.bool_] = self._since_update <= self.max_age
        if not alive.all():
            self._keep(alive)
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_assign"] = None  # lap's solver, imported again by open() in the new process
        return state


def _assignment_solver(owner: str) -> Any:
    try:
        from lap import lapjv
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"{owner} needs the lap package (its assignment solver): install it with pip install 'asyncflow[video]'"
        ) from exc
    return lapjv
