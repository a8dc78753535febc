"""videoflow's ``videoflow.processors.vision``: the vision processors, by submodule.

The submodules mirror videoflow's: :mod:`.annotators` (``ImageAnnotator``,
``BoundingBoxAnnotator``, ``TrackerAnnotator``, ``SegmenterAnnotator``),
:mod:`.detectors` (``ObjectDetector``), :mod:`.segmentation` (``Segmenter``),
:mod:`.trackers` (``BoundingBoxTracker``, ``KalmanFilterBoundingBoxTracker``),
:mod:`.transformers` (``CropImageTransformer``, ``MaskImageTransformer``,
``ResizeImageTransformer``), and :mod:`.counters` and :mod:`.pose`, empty in
videoflow 0.2.10 as here.  They need the ``video`` extra (OpenCV, numpy); this
package imports none of them until a name is used (videoflow's exported none; for
convenience, the names above are offered here too).

Models: videoflow's detectors, segmenters and pose estimators lived in
videoflow-contrib and downloaded their weights; asyncflow downloads nothing.
``ObjectDetector`` and ``Segmenter`` are the abstract bases, as in videoflow; for a
working detector use asyncflow's ``OnnxDetector`` (a local ONNX model file, e.g. a
YOLO export; ``asyncflow.processors.vision.onnx``), or OpenCV's bundled
``HogPeopleDetector`` / ``HaarCascadeDetector``
(``asyncflow.processors.vision.opencv_detectors``).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Each name offered here, and the submodule of this package that defines it.
_WHERE = {
    "BoundingBoxAnnotator": "annotators",
    "ImageAnnotator": "annotators",
    "SegmenterAnnotator": "annotators",
    "TrackerAnnotator": "annotators",
    "ObjectDetector": "detectors",
    "Segmenter": "segmentation",
    "BoundingBoxTracker": "trackers",
    "KalmanFilterBoundingBoxTracker": "trackers",
    "CropImageTransformer": "transformers",
    "MaskImageTransformer": "transformers",
    "ResizeImageTransformer": "transformers",
}
_SUBMODULES = ("annotators", "counters", "detectors", "pose", "segmentation", "trackers", "transformers")

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{where}"), name)
