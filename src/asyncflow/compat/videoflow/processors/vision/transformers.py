"""videoflow's ``videoflow.processors.vision.transformers``: crop, mask and resize."""

from __future__ import annotations

from asyncflow.processors.vision.transformers import CropImageTransformer, MaskImageTransformer, ResizeImageTransformer

__all__ = ["CropImageTransformer", "MaskImageTransformer", "ResizeImageTransformer"]
