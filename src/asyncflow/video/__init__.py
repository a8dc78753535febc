"""Video helpers shared by the video nodes, and synthetic clips for tests and demos.

Needs the ``video`` extra (OpenCV, numpy); ``make_clip`` and friends are imported
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncflow._lazy import lazy_exports

if TYPE_CHECKING:
    from .synthetic import clip_boxes, clip_frame, make_clip

__all__ = ["clip_boxes", "clip_frame", "make_clip"]

__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "asyncflow.video.synthetic"))
