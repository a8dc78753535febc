"""Computer-vision processors (videoflow's ``videoflow.processors.vision``): transformers, annotators, detectors.

Needs the ``video`` extra (OpenCV, numpy).  Frames are ``numpy`` arrays
``(height, width, 3)``, ``uint8``, BGR as the readers emit them; boxes are
``[ymin, xmin, ymax, xmax, ...]`` in pixels.
"""

from __future__ import annotations

from .annotators import BoundingBoxAnnotator, ImageAnnotator, TrackerAnnotator
from .detectors import EdgeDetector, MotionDetector, ObjectDetector
from .transformers import CropImageTransformer, FrameIndexSplitter, MaskImageTransformer, ResizeImageTransformer

__all__ = [
    "BoundingBoxAnnotator",
    "CropImageTransformer",
    "EdgeDetector",
    "FrameIndexSplitter",
    "ImageAnnotator",
    "MaskImageTransformer",
    "MotionDetector",
    "ObjectDetector",
    "ResizeImageTransformer",
    "TrackerAnnotator",
]
