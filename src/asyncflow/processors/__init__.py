"""Built-in processors: the transformations of a flow.

The vision processors (``asyncflow.processors.vision``) need the ``video`` extra
(OpenCV, numpy, lap; ``OnnxDetector`` also the ``onnx`` extra); their names are
imported on first use, so
``import asyncflow.processors`` does not import OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncflow._lazy import lazy_exports

from .aggregators import (
    CountAggregator,
    MaxAggregator,
    MinAggregator,
    MultiplicationAggregator,
    SumAggregator,
)
from .basic import FunctionProcessor, FunctionProcessorNode, IdentityProcessor, JoinerProcessor
from .module import ModuleNode, TaskModuleNode
from .onetask import OneTaskProcessorNode

if TYPE_CHECKING:
    from .vision import (
        BoundingBoxAnnotator,
        BoundingBoxTracker,
        CropImageTransformer,
        EdgeDetector,
        FrameIndexSplitter,
        HaarCascadeDetector,
        HogPeopleDetector,
        ImageAnnotator,
        KalmanFilterBoundingBoxTracker,
        MaskImageTransformer,
        MotionDetector,
        ObjectDetector,
        OnnxDetector,
        ResizeImageTransformer,
        TrackerAnnotator,
    )

# The vision names, imported on first use (see asyncflow._lazy).
_VISION = (
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
)

__all__ = [
    "BoundingBoxAnnotator",
    "BoundingBoxTracker",
    "CountAggregator",
    "CropImageTransformer",
    "EdgeDetector",
    "FrameIndexSplitter",
    "FunctionProcessor",
    "FunctionProcessorNode",
    "HaarCascadeDetector",
    "HogPeopleDetector",
    "IdentityProcessor",
    "ImageAnnotator",
    "JoinerProcessor",
    "KalmanFilterBoundingBoxTracker",
    "MaskImageTransformer",
    "MaxAggregator",
    "MinAggregator",
    "ModuleNode",
    "MotionDetector",
    "MultiplicationAggregator",
    "ObjectDetector",
    "OneTaskProcessorNode",
    "OnnxDetector",
    "ResizeImageTransformer",
    "SumAggregator",
    "TaskModuleNode",
    "TrackerAnnotator",
]

__getattr__ = lazy_exports(__name__, dict.fromkeys(_VISION, "asyncflow.processors.vision"))
