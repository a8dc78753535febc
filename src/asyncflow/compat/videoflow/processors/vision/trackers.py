"""videoflow's ``videoflow.processors.vision.trackers``: ``BoundingBoxTracker`` and a working tracker.

Both names come from asyncflow's :mod:`asyncflow.processors.vision.trackers`
(imported when first used; it needs the ``video`` extra):

- ``BoundingBoxTracker``: the abstract base, as in videoflow: a one-task processor
  whose ``process(dets)`` returns ``self._track(dets)``, detections
  ``(nb_boxes, 6)`` ``[ymin, xmin, ymax, xmax, class_index, score]`` in, tracks
  ``(nb_tracks, 5)`` ``[ymin, xmin, ymax, xmax, track_id]`` out;
- ``KalmanFilterBoundingBoxTracker``: SORT (Kalman-filtered boxes, IoU
  assignment), the tracker videoflow-contrib offered under that name.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = ("BoundingBoxTracker", "KalmanFilterBoundingBoxTracker")
__all__ = list(_NAMES)  # resolved by __getattr__ below

_SOURCE = "asyncflow.processors.vision.trackers"


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_SOURCE)
    except ModuleNotFoundError as exc:
        if exc.name != _SOURCE:
            raise  # a dependency is missing (OpenCV, numpy): say which
        raise ImportError(
            f"{__name__}.{name} comes from {_SOURCE}, which this installation of asyncflow does not have"
        ) from exc
    value = getattr(module, name)
    globals()[name] = value  # later reads skip this function
    return value
