"""videoflow's ``videoflow.processors.vision.detectors``: the ``ObjectDetector`` base class."""

from __future__ import annotations

from asyncflow.processors.vision.detectors import ObjectDetector

__all__ = ["ObjectDetector"]
