"""videoflow's ``videoflow.processors.vision.annotators`` (``SegmenterAnnotator`` is not available yet)."""

from __future__ import annotations

from asyncflow.processors.vision.annotators import BoundingBoxAnnotator, ImageAnnotator, TrackerAnnotator

__all__ = ["BoundingBoxAnnotator", "ImageAnnotator", "TrackerAnnotator"]
