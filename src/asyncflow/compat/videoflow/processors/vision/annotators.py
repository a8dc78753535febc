"""videoflow's ``videoflow.processors.vision.annotators``: box, track and segmentation annotators (need OpenCV).

``ImageAnnotator``, ``BoundingBoxAnnotator`` and ``TrackerAnnotator`` are asyncflow's
(:mod:`asyncflow.processors.vision.annotators`), with videoflow's signatures.
``BoundingBoxAnnotator``'s ``class_labels_dataset="coco"`` label map is bundled;
videoflow downloaded it, and the other datasets' maps too -- asyncflow downloads
nothing, so for those give the file as ``class_labels_path``.

``SegmenterAnnotator(class_labels_path=None, class_labels_dataset="coco",
transparency=0.5, nb_tasks=1)`` is built here on asyncflow's ``ImageAnnotator``:
``process(im, (masks, classes, scores))`` (what a ``Segmenter`` returns) blends each
mask (``(h, w)``, values in [0, 1], 1 meaning inside) into a copy of the image in
its class's color, a mask value of 1 counting as ``transparency``, as videoflow did.
The label map is read (or the dataset name checked) as in videoflow, and kept as
``class_labels``; nothing is downloaded, and drawing does not need it.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, OnError
from asyncflow.processors.vision.annotators import (
    BoundingBoxAnnotator,
    ImageAnnotator,
    TrackerAnnotator,
    load_labels,
)
from asyncflow.video._common import Color, Image, check_real

__all__ = ["BoundingBoxAnnotator", "ImageAnnotator", "SegmenterAnnotator", "TrackerAnnotator"]


class SegmenterAnnotator(ImageAnnotator):
    """Blend segmentation masks into each frame, one color per class (videoflow's signature and drawing)."""

    colors: ClassVar[list[Color]] = [
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
        (255, 255, 0),
        (255, 0, 255),
        (0, 255, 255),
        (255, 127.5, 0),
        (255, 0, 127.5),
        (127.5, 255, 0),
        (0, 255, 127.5),
        (127.5, 0, 255),
        (0, 127.5, 255),
    ]

    def __init__(
        self,
        class_labels_path: str | os.PathLike[str] | None = None,
        class_labels_dataset: str | None = "coco",
        transparency: float = 0.5,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        owner = self.describe()
        if class_labels_path is None and class_labels_dataset is None:
            raise NodeConfigError(f"{owner}: if class_labels_path is None, class_labels_dataset cannot be None")
        # Drawing does not use the labels: a dataset whose map videoflow downloaded gives none.
        self.class_labels = load_labels(owner, None, class_labels_path, class_labels_dataset, unbundled_ok=True)
        self.transparency = check_real(owner, "transparency", transparency, 0)
        if self.transparency > 1:
            raise NodeConfigError(f"{owner}: transparency must be between 0 and 1, got {transparency!r}")

    def _annotate(self, im: Image, annotations: Any) -> Image:
        """Blend ``annotations[0]`` (the masks) into ``im`` in the colors of ``annotations[1]`` (their classes)."""
        masks, classes = annotations[0], annotations[1]
        out = im.astype(np.float64)
        if out.ndim == 2:
            out = np.repeat(out[:, :, None], 3, axis=2)
        elif out.shape[2] == 1:
            out = np.repeat(out, 3, axis=2)
        for index, mask in enumerate(masks):
            alpha = np.array(mask, dtype=np.float64)
            if alpha.shape != out.shape[:2]:
                raise ValueError(f"{self.describe()}: mask {index} has shape {alpha.shape}, the image {out.shape[:2]}")
            alpha[alpha == 1.0] = self.transparency
            alpha = alpha[:, :, None]
            color = np.array(self.colors[int(classes[index]) % len(self.colors)], dtype=np.float64)
            blended = alpha * color + (1.0 - alpha) * out[:, :, :3]
            out[:, :, :3] = blended
        result: Image = out.astype(np.uint8)
        return result
