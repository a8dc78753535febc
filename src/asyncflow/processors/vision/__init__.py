"""Computer-vision processors (videoflow's ``processors.vision``): transformers, annotators, detectors, trackers.

Needs the ``video`` extra (OpenCV, numpy, and lap for the trackers);
``OnnxDetector`` also needs the ``onnx`` extra (onnxruntime), imported only when
the node opens.  Frames are ``numpy`` arrays
``(height, width, 3)``, ``uint8``, BGR as the readers emit them; boxes are
``[ymin, xmin, ymax, xmax, ...]`` in pixels.
"""

from __future__ import annotations

from .annotators import BoundingBoxAnnotator, ImageAnnotator, TrackerAnnotator
from .detectors import EdgeDetector, MotionDetector, ObjectDetector
from .onnx import OnnxDetector
from .opencv_detectors import HaarCascadeDetector, HogPeopleDetector
from .trackers import BoundingBoxTracker, KalmanFilterBoundingBoxTracker
from .transformers import CropImageTransformer, FrameIndexSplitter, MaskImageTransformer, ResizeImageTransformer

__all__ = [
    "BoundingBoxAnnotator",
    "BoundingBoxTracker",
    "CropImageTransformer",
    "EdgeDetector",
    "FrameIndexSplitter",
    "HaarCascadeDetector",
    "HogPeopleDetector",
    "ImageAnnotator",
    "KalmanFilterBoundingBoxTracker",
    "MaskImageTransformer",
    "MotionDetector",
    "ObjectDetector",
    "OnnxDetector",
    "ResizeImageTransformer",
    "TrackerAnnotator",
]
