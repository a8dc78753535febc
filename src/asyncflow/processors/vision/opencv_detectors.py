"""Detectors whose models ship inside the OpenCV wheel: HOG people (Dalal-Triggs) and Haar cascades (faces...).

Nothing is downloaded: the HOG people detector's SVM is compiled into OpenCV
(``cv2.HOGDescriptor.getDefaultPeopleDetector()``) and the Haar cascades are XML
files in ``cv2.data.haarcascades``.  Both emit the detectors' layout, an
``(nb_boxes, 6)`` ``float32`` array of ``[ymin, xmin, ymax, xmax, class_index,
score]`` in pixels of the frame, so ``BoundingBoxAnnotator`` and the trackers take
their output as they take any detector's.  Both are classic sliding-window
detectors: much less accurate than a neural network (``OnnxDetector``), but with
no model to fetch and no extra dependency.  Stateless: any ``nb_tasks`` gives
the same output.
"""

from __future__ import annotations

import math
import os
from typing import Any

import cv2
import numpy as np

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, OnError
from asyncflow.video._common import Image, check_bool, check_int, check_real, check_size

from .detectors import Detections, ObjectDetector, _gray, no_detections

__all__ = ["HaarCascadeDetector", "HogPeopleDetector", "bundled_cascades"]

#: Where the OpenCV wheel keeps its Haar cascades (``cv2.data`` has no type information).
HAARCASCADES: str = cv2.data.haarcascades  # type: ignore[attr-defined]
#: The HOG people detector's window, (width, height): smaller frames hold no person.
HOG_WINDOW = (64, 128)
#: The COCO label-map id of "person" (``BoundingBoxAnnotator``'s default labels).
PERSON = 1


def bundled_cascades() -> list[str]:
    """The Haar cascade files OpenCV ships (``cv2.data.haarcascades``), by name."""
    return sorted(name for name in os.listdir(HAARCASCADES) if name.endswith(".xml"))


def _uint8(owner: str, im: Image) -> Image:
    if im.dtype != np.uint8:
        raise TypeError(f"{owner}: needs uint8 frames, got {im.dtype}")
    if im.ndim == 3 and im.shape[2] == 4:
        return im[..., :3]
    if im.ndim == 3 and im.shape[2] == 1:
        return im[..., 0]
    return im


def _rows(rects: Any, scores: Any, class_index: int, shape: tuple[int, ...]) -> Detections:
    """OpenCV's ``(x, y, w, h)`` rectangles and their scores in the detectors' layout, clipped to the frame."""
    boxes = np.asarray(rects, dtype=np.float32).reshape(-1, 4)
    if boxes.shape[0] == 0:
        return no_detections()
    height, width = shape[:2]
    out = np.empty((boxes.shape[0], 6), dtype=np.float32)
    out[:, 0] = np.clip(boxes[:, 1], 0, height)
    out[:, 1] = np.clip(boxes[:, 0], 0, width)
    out[:, 2] = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    out[:, 3] = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    out[:, 4] = class_index
    out[:, 5] = np.asarray(scores, dtype=np.float32).reshape(-1)
    area = (out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1])
    order = np.lexsort((out[:, 1], out[:, 0], -area, -out[:, 5]))  # best score, then largest, first
    return out[order]


class HogPeopleDetector(ObjectDetector):
    """Find standing people with OpenCV's HOG + linear SVM people detector (Dalal and Triggs, 2005).

    ``process(im)`` takes a ``uint8`` frame (BGR, BGRA or gray) and returns the
    detectors' ``(nb_boxes, 6)`` array, best score first.  ``class_index`` is 1
    (COCO's "person", as ``BoundingBoxAnnotator`` names it); ``score`` is the SVM's
    margin squashed into 0..1 by the logistic function (0.5 at the decision
    boundary; the margin itself is no probability).  The arguments are
    ``HOGDescriptor.detectMultiScale``'s: ``hit_threshold`` (the margin a window
    needs), ``win_stride`` (pixels, a multiple of 8), ``padding``, ``scale`` (the
    pyramid's step) and ``group_threshold`` (how many overlapping windows a person
    needs: 0 keeps every raw window).  People smaller than the 64x128 window are
    not found; a frame smaller than it gives no boxes.  About 0.1 to 0.3 s for a
    640x360 frame on one core: give the node ``nb_tasks`` or shrink the frames.
    """

    def __init__(
        self,
        hit_threshold: float = 0.0,
        win_stride: int = 8,
        scale: float = 1.05,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        padding: int = 8,
        group_threshold: int = 2,
        class_index: int = PERSON,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        owner = self.describe()
        self.hit_threshold = float(hit_threshold)
        if not math.isfinite(self.hit_threshold):
            raise NodeConfigError(f"{owner}: hit_threshold must be a finite number, got {hit_threshold!r}")
        self.win_stride = check_int(owner, "win_stride", win_stride, 8)
        if self.win_stride % 8:
            raise NodeConfigError(
                f"{owner}: win_stride must be a multiple of 8 (the HOG block stride), got {win_stride}"
            )
        self.scale = check_real(owner, "scale", scale, 1, strict=True)
        self.padding = check_int(owner, "padding", padding, 0)
        self.group_threshold = check_int(owner, "group_threshold", group_threshold, 0)
        self.class_index = check_int(owner, "class_index", class_index, 0)
        self._hog: Any = None

    def open(self) -> None:
        """Build the HOG descriptor and load the people SVM (compiled into OpenCV)."""
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32))
        self._hog = hog

    def _detect(self, im: Image) -> Detections:
        image = _uint8(self.describe(), im)
        if image.shape[1] < HOG_WINDOW[0] or image.shape[0] < HOG_WINDOW[1]:
            return no_detections()
        if self._hog is None:
            self.open()
        rects, weights = self._hog.detectMultiScale(
            image,
            hitThreshold=self.hit_threshold,
            winStride=(self.win_stride, self.win_stride),
            padding=(self.padding, self.padding),
            scale=self.scale,
            groupThreshold=self.group_threshold,
        )
        margins = np.asarray(weights, dtype=np.float64).reshape(-1)
        return _rows(rects, 1 / (1 + np.exp(-margins)), self.class_index, image.shape)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_hog"] = None  # an OpenCV object: built again by open() in the new process
        return state


class HaarCascadeDetector(ObjectDetector):
    """Find faces (or what another cascade was trained on) with an OpenCV Haar cascade (Viola and Jones, 2001).

    ``cascade`` is the name of one of the cascades OpenCV ships
    (``bundled_cascades()``: ``haarcascade_frontalface_default.xml``, the default,
    ``haarcascade_profileface.xml``, ``haarcascade_fullbody.xml``,
    ``haarcascade_frontalcatface.xml``...) or the path of a cascade XML file.
    ``process(im)`` takes a ``uint8`` frame (BGR, BGRA or gray) and returns the
    detectors' ``(nb_boxes, 6)`` array, largest box first.  The frame is turned to
    gray and, with ``equalize=True``, its histogram equalised, then
    ``CascadeClassifier.detectMultiScale(scale_factor, min_neighbors, min_size,
    max_size)`` runs; ``min_size`` / ``max_size`` are ``(width, height)``.  A cascade
    gives no confidence: ``score`` is 1.0 for every box (``min_neighbors`` is the
    knob that trades misses for false alarms).  ``class_index`` is 0: label it, for
    instance ``BoundingBoxAnnotator(class_labels={0: "face"})``.
    """

    def __init__(
        self,
        cascade: str | os.PathLike[str] = "haarcascade_frontalface_default.xml",
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        min_size: tuple[int, int] = (30, 30),
        max_size: tuple[int, int] | None = None,
        equalize: bool = True,
        class_index: int = 0,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        owner = self.describe()
        self.cascade = self._find_cascade(cascade)
        self.scale_factor = check_real(owner, "scale_factor", scale_factor, 1, strict=True)
        self.min_neighbors = check_int(owner, "min_neighbors", min_neighbors, 0)
        self.min_size = check_size(owner, "min_size", min_size, ("width", "height"))
        self.max_size = None if max_size is None else check_size(owner, "max_size", max_size, ("width", "height"))
        self.equalize = check_bool(owner, "equalize", equalize)
        self.class_index = check_int(owner, "class_index", class_index, 0)
        self._classifier: Any = None

    def _find_cascade(self, cascade: object) -> str:
        owner = self.describe()
        if not isinstance(cascade, (str, os.PathLike)) or not os.fspath(cascade):
            raise NodeConfigError(f"{owner}: cascade must be a cascade's name or path, got {cascade!r}")
        path = os.fspath(cascade)
        if not isinstance(path, str):
            raise NodeConfigError(f"{owner}: cascade must be a str path, got {cascade!r}")
        if os.path.isfile(path):
            return path
        bundled = os.path.join(HAARCASCADES, path)
        if os.path.dirname(path) == "" and os.path.isfile(bundled):
            return bundled
        raise NodeConfigError(
            f"{owner}: cascade {path!r} is neither a file nor one of OpenCV's cascades: "
            f"{', '.join(bundled_cascades())}"
        )

    def open(self) -> None:
        """Load the cascade."""
        problem = f"{self.describe()}: OpenCV cannot load {self.cascade!r} as a cascade classifier"
        try:
            classifier = cv2.CascadeClassifier(self.cascade)
        except Exception as exc:  # cv2.error, or SystemError for a malformed file
            raise ValueError(f"{problem}: {exc}") from exc
        if classifier.empty():
            raise ValueError(problem)
        self._classifier = classifier

    def _detect(self, im: Image) -> Detections:
        gray = _gray(_uint8(self.describe(), im))
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        if self._classifier is None:
            self.open()
        rects = self._classifier.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=self.min_size,
            maxSize=self.max_size or (0, 0),
        )
        boxes = np.asarray(rects, dtype=np.float32).reshape(-1, 4)
        return _rows(boxes, np.ones(boxes.shape[0], np.float32), self.class_index, gray.shape)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_classifier"] = None  # an OpenCV object: loaded again by open() in the new process
        return state
