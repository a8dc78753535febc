"""Detectors: videoflow's ``ObjectDetector`` interface, and two cheap real ones (motion boxes, Canny edges).

Detections use videoflow's layout: an ``(nb_boxes, 6)`` ``float32`` array of
``[ymin, xmin, ymax, xmax, class_index, score]`` in pixels of the input frame.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, OnError, ProcessorNode
from asyncflow.video._common import Image, as_image, check_int, check_real

__all__ = ["EdgeDetector", "MotionDetector", "ObjectDetector", "no_detections"]

Detections = npt.NDArray[np.float32]

_KERNEL = np.ones((3, 3), np.uint8)


def no_detections() -> Detections:
    """An empty detections array, shape ``(0, 6)``."""
    return np.zeros((0, 6), dtype=np.float32)


def _gray(im: Image) -> Image:
    if im.ndim == 2:
        return im
    if im.shape[2] == 1:
        return im[..., 0]
    code = cv2.COLOR_BGRA2GRAY if im.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    gray: Image = cv2.cvtColor(im, code)
    return gray


def _check_blur(owner: str, blur: object) -> int:
    size = check_int(owner, "blur", blur, 0)
    if size > 1 and size % 2 == 0:
        raise NodeConfigError(f"{owner}: blur must be 0, 1 or an odd kernel size, got {size}")
    return size


class ObjectDetector(ProcessorNode):
    """Base of the object detectors: ``process(im)`` returns the boxes found in the frame (videoflow's interface).

    Subclasses implement ``_detect(im)`` returning an ``(nb_boxes, 6)`` array of
    ``[ymin, xmin, ymax, xmax, class_index, score]`` in pixels.
    """

    def _detect(self, im: Image) -> Detections:
        raise NotImplementedError(f"{type(self).__name__} must implement _detect(im)")

    def process(self, im: Image) -> Detections:
        """Return the detections in ``im``."""
        return self._detect(as_image(self.describe(), im))


class MotionDetector(ObjectDetector):
    """Find what moved by frame differencing: boxes around the pixels that changed since the previous frame.

    Each frame is blurred (``blur``, an odd kernel size; 0 or 1 for none) and
    subtracted from the previous one; the largest change of any channel is
    thresholded at ``threshold`` (0-255) and dilated ``dilate`` times to join nearby
    pixels; every connected region of at least ``min_area`` pixels (its bounding
    box's area) gives a box
    ``[ymin, xmin, ymax, xmax, class_index, score]``, ``ymax``/``xmax`` exclusive,
    ``score`` the fraction of the box's pixels that changed.  Boxes come largest
    first.  The first frame, and a frame whose size differs from the previous one,
    give no boxes.

    The detector keeps one frame of state, in its own process.  With ``nb_tasks=N``
    each of the N workers sees every N-th frame and differences each frame against
    the previous frame *it* saw, N frames back: motion is measured over N frames, so
    a moving shape's box spans where it was then and where it is now, and the first
    frame each worker sees gives no boxes.  That is exact enough to find and follow
    moving things; for differencing strictly consecutive frames keep ``nb_tasks=1``.
    """

    def __init__(
        self,
        threshold: float = 25,
        min_area: int = 64,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        blur: int = 5,
        dilate: int = 2,
        class_index: int = 0,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        owner = self.describe()
        self.threshold = check_real(owner, "threshold", threshold, 0)
        if self.threshold >= 255:
            raise NodeConfigError(f"{owner}: threshold must be below 255, got {threshold}")
        self.min_area = check_int(owner, "min_area", min_area, 1)
        self.blur = _check_blur(owner, blur)
        self.dilate = check_int(owner, "dilate", dilate, 0)
        self.class_index = check_int(owner, "class_index", class_index, 0)
        self._previous: Image | None = None

    def open(self) -> None:
        """Forget the previous frame."""
        self._previous = None

    def _prepare(self, im: Image) -> Image:
        if im.dtype != np.uint8:
            raise TypeError(f"{self.describe()}: motion detection needs uint8 frames, got {im.dtype}")
        if im.ndim == 3 and im.shape[2] == 4:
            im = im[..., :3]
        # Without a blur, copy: the frame may be a buffer its sender reuses.
        prepared: Image = cv2.GaussianBlur(im, (self.blur, self.blur), 0) if self.blur > 1 else im.copy()
        return prepared

    def _detect(self, im: Image) -> Detections:
        current = self._prepare(im)
        previous, self._previous = self._previous, current
        if previous is None or previous.shape != current.shape:
            return no_detections()
        difference = cv2.absdiff(previous, current)
        if difference.ndim == 3:
            # The largest change of any channel: a red shape on a background of the
            # same brightness changes little in gray, much in red.
            difference = difference.max(axis=2)
        changed = cv2.threshold(difference, self.threshold, 255, cv2.THRESH_BINARY)[1]
        grown = cv2.dilate(changed, _KERNEL, iterations=self.dilate) if self.dilate else changed
        contours, _hierarchy = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        rows = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w * h < self.min_area:
                continue
            score = cv2.countNonZero(changed[y : y + h, x : x + w]) / (w * h)
            rows.append((y, x, y + h, x + w, self.class_index, score))
        if not rows:
            return no_detections()
        rows.sort(key=lambda row: (-(row[2] - row[0]) * (row[3] - row[1]), row[0], row[1]))
        return np.array(rows, dtype=np.float32)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_previous"] = None  # run-time state, started afresh in the new process
        return state


class EdgeDetector(ProcessorNode):
    """Find edges with Canny: ``process(im)`` returns a ``uint8`` edge map of shape ``(height, width)``, 0 or 255.

    The frame is turned to gray, blurred (``blur``, an odd kernel size; 0 or 1 for
    none), then ``cv2.Canny(low_threshold, high_threshold)`` runs.  Stateless: any
    ``nb_tasks`` gives the same output.  ``VideofileWriter`` writes such gray maps
    as they are.
    """

    def __init__(
        self,
        low_threshold: float = 50,
        high_threshold: float = 150,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        blur: int = 3,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        owner = self.describe()
        self.low_threshold = check_real(owner, "low_threshold", low_threshold, 0)
        self.high_threshold = check_real(owner, "high_threshold", high_threshold, 0)
        if self.high_threshold < self.low_threshold:
            raise NodeConfigError(
                f"{owner}: high_threshold ({high_threshold}) must be >= low_threshold ({low_threshold})"
            )
        self.blur = _check_blur(owner, blur)

    def process(self, im: Image) -> Image:
        """Return the edge map of ``im``."""
        gray = _gray(as_image(self.describe(), im))
        if gray.dtype != np.uint8:
            raise TypeError(f"{self.describe()}: Canny needs uint8 frames, got {gray.dtype}")
        if self.blur > 1:
            gray = cv2.GaussianBlur(gray, (self.blur, self.blur), 0)
        edges: Image = cv2.Canny(gray, self.low_threshold, self.high_threshold)
        return edges
