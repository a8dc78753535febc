"""videoflow's ``videoflow.utils.transforms``: ``resize_add_padding`` (needs the ``video`` extra).

``resize_add_padding(im, t_h, t_w)`` scales ``im`` to fit inside ``t_h`` x ``t_w``,
keeping its aspect ratio, and pads the bottom and right with black: asyncflow's
``ResizeImageTransformer(maintain_ratio=True)``.  One difference: videoflow scaled
by the ratio of the target's *smaller* side, which could leave the image larger
than the target (and fail); this always fits.
"""

from __future__ import annotations

from typing import Any

__all__ = ["resize_add_padding"]


def resize_add_padding(im: Any, t_h: int, t_w: int) -> Any:
    """``im`` (``(h, w, 3)``) resized to fit ``(t_h, t_w)`` with its aspect ratio kept, padded with zeros."""
    from asyncflow.processors.vision.transformers import ResizeImageTransformer

    return ResizeImageTransformer(maintain_ratio=True, name="resize_add_padding").process(im, (t_h, t_w))
