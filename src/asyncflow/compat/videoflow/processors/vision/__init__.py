"""videoflow's ``videoflow.processors.vision``: the vision processors asyncflow has.

Available (asyncflow's own, from :mod:`asyncflow.processors.vision`; they need the
``video`` extra -- OpenCV, numpy -- and are imported on first use):
``ImageAnnotator``, ``BoundingBoxAnnotator``, ``TrackerAnnotator`` (also in
:mod:`.annotators`), ``ObjectDetector`` (:mod:`.detectors`), ``CropImageTransformer``,
``MaskImageTransformer``, ``ResizeImageTransformer`` (:mod:`.transformers`).

Not available yet: videoflow's ``Segmenter`` (``vision.segmentation``),
``SegmenterAnnotator`` (``vision.annotators``) and ``BoundingBoxTracker``
(``vision.trackers``).  videoflow's own ``ObjectDetector`` and ``Segmenter`` were
abstract bases whose models lived in videoflow-contrib; the same holds here.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BoundingBoxAnnotator",
    "CropImageTransformer",
    "ImageAnnotator",
    "MaskImageTransformer",
    "ObjectDetector",
    "ResizeImageTransformer",
    "TrackerAnnotator",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("asyncflow.processors.vision"), name)
