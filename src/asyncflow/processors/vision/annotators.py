"""Image annotators: draw boxes, labels, track ids and frame numbers on a copy of each frame (videoflow's).

An annotator's ``process(im, annotations)`` returns an annotated copy of ``im``;
the input is never modified.  Given a third parent, ``process(im, annotations,
frame_index)`` also writes the frame number in the top-left corner: the third input
is an int, or a video reader's ``(frame_index, frame)`` pair (so the reader itself
can be that parent).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, OnError, ProcessorNode
from asyncflow.video._common import Color, Image, as_image, check_color, check_int, check_path

__all__ = ["BoundingBoxAnnotator", "ImageAnnotator", "TrackerAnnotator", "load_labels", "parse_label_map"]

#: The COCO label map of the TensorFlow detection models (80 classes, ids 1..90), which
#: videoflow downloads for ``class_labels_dataset="coco"``; bundled here.
COCO_LABELS: dict[int, str] = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck",
    9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench",
    16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear", 24: "zebra",
    25: "giraffe", 27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase", 34: "frisbee",
    35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat", 40: "baseball glove",
    41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle", 46: "wine glass", 47: "cup", 48: "fork",
    49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple", 54: "sandwich", 55: "orange", 56: "broccoli",
    57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut", 61: "cake", 62: "chair", 63: "couch", 64: "potted plant",
    65: "bed", 67: "dining table", 70: "toilet", 72: "tv", 73: "laptop", 74: "mouse", 75: "remote", 76: "keyboard",
    77: "cell phone", 78: "microwave", 79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 84: "book",
    85: "clock", 86: "vase", 87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}

#: The datasets whose label maps videoflow downloads; only COCO's is bundled.
SUPPORTED_DATASETS = ("coco", "oidv4", "pascal", "kitti", "faces")

_ITEM = re.compile(r"item\s*\{(.*?)\}", re.DOTALL)
_ID = re.compile(r"\bid\s*:\s*(-?\d+)")
_DISPLAY_NAME = re.compile(r"\bdisplay_name\s*:\s*[\"'](.*?)[\"']")
_NAME = re.compile(r"\bname\s*:\s*[\"'](.*?)[\"']")


def parse_label_map(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read a TensorFlow ``.pbtxt`` label map: ``{id: display_name}`` (``name`` when there is no display name)."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    labels: dict[int, str] = {}
    for body in _ITEM.findall(text):
        index = _ID.search(body)
        label = _DISPLAY_NAME.search(body) or _NAME.search(body)
        if index is not None and label is not None:
            labels[int(index.group(1))] = label.group(1)
    return labels


def _boxes(owner: str, boxes: object, columns: int, layout: str) -> npt.NDArray[np.float64]:
    """``boxes`` as an ``(nb_boxes, >= columns)`` float array (``None`` or empty: no boxes).

    Every value of the first ``columns`` must be finite: a NaN or infinite one raises
    ``ValueError`` naming ``owner``, the box's index and its values.
    """
    if boxes is None:
        return np.zeros((0, columns))
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: boxes must be an array of {layout} rows, got {type(boxes).__name__}") from None
    if array.size == 0:
        return np.zeros((0, columns))
    if array.ndim != 2 or array.shape[1] < columns:
        raise ValueError(f"{owner}: boxes must have shape (nb_boxes, {columns}) of {layout}, got {array.shape}")
    finite = np.isfinite(array[:, :columns]).all(axis=1)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"{owner}: box {index} holds a NaN or infinite value: {array[index, :columns].tolist()} "
            f"(boxes are {layout}, finite numbers)"
        )
    return array


def _corners(row: npt.NDArray[np.float64], im: Image, margin: int) -> tuple[int, int, int, int]:
    """A box's ``[ymin, xmin, ymax, xmax]`` as ints, each clipped to ``margin`` pixels around the frame.

    A coordinate far outside the frame (``1e12``) would overflow OpenCV's ints; clipped
    to just outside, the edges that lay outside still do not show and the others are
    drawn where they were.
    """
    height, width = im.shape[:2]
    ymin, ymax = (int(min(max(v, -margin), height + margin)) for v in (row[0], row[2]))
    xmin, xmax = (int(min(max(v, -margin), width + margin)) for v in (row[1], row[3]))
    return ymin, xmin, ymax, xmax


class ImageAnnotator(ProcessorNode):
    """Base of the annotators: ``process(im, annotations)`` returns a copy of ``im`` with the annotations drawn.

    Subclasses implement ``_annotate(im, annotations)``, which draws on ``im`` (a
    private copy) and returns it.
    """

    #: Color of the frame number, in the frame's channel order.
    index_color: Color = (255, 255, 255)

    def _annotate(self, im: Image, annotations: Any) -> Image:
        raise NotImplementedError(f"{type(self).__name__} must implement _annotate(im, annotations)")

    def _set_box_style(self, box_color: Color, box_thickness: int, text_color: Color) -> None:
        """Check and keep the colors and line width of boxed annotators."""
        owner = self.describe()
        self.box_color = check_color(owner, "box_color", box_color)
        self.box_thickness = check_int(owner, "box_thickness", box_thickness, 1)
        self.text_color = check_color(owner, "text_color", text_color)

    def process(self, im: Image, annotations: Any, frame_index: int | tuple[int, Any] | None = None) -> Image:
        """Return a copy of ``im`` with ``annotations`` (and ``frame_index``, when given) drawn on it."""
        copy = np.array(as_image(self.describe(), im), order="C", copy=True)
        annotated = self._annotate(copy, annotations)
        if frame_index is not None:
            index = frame_index[0] if isinstance(frame_index, tuple) else frame_index
            self._draw_index(annotated, int(index))
        return annotated

    def _draw_index(self, im: Image, index: int) -> None:
        text = f"#{index}"
        origin = (6, 6 + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][1])
        cv2.putText(im, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(im, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, self.index_color, 1, cv2.LINE_AA)


def load_labels(
    owner: str,
    class_labels: Mapping[int, str] | None,
    path: str | os.PathLike[str] | None,
    dataset: str | None,
    *,
    unbundled_ok: bool = False,
) -> dict[int, str]:
    """Class names from ``class_labels`` (a dict), else ``path`` (a ``.pbtxt`` label map), else ``dataset``.

    ``"coco"`` is bundled; another of ``SUPPORTED_DATASETS`` (which videoflow
    downloaded) raises ``NodeConfigError`` saying to give its file, or gives ``{}``
    with ``unbundled_ok``; ``None`` gives ``{}``.  Errors name ``owner``.
    """
    if class_labels is not None:
        if not isinstance(class_labels, Mapping):
            raise NodeConfigError(f"{owner}: class_labels must be a dict {{class_index: name}}")
        return {int(key): str(value) for key, value in class_labels.items()}
    if path is not None:
        label_file = check_path(owner, "class_labels_path", path)
        try:
            return parse_label_map(label_file)
        except OSError as exc:
            raise NodeConfigError(f"{owner}: cannot read class_labels_path {label_file!r}: {exc}") from exc
    if dataset is None:
        return {}
    if dataset == "coco":
        return dict(COCO_LABELS)
    if dataset in SUPPORTED_DATASETS:
        if unbundled_ok:
            return {}
        raise NodeConfigError(
            f"{owner}: the {dataset!r} label map is not bundled (videoflow downloaded it): "
            "give its .pbtxt file as class_labels_path, or a dict as class_labels"
        )
    raise NodeConfigError(
        f"{owner}: class_labels_dataset must be one of {', '.join(SUPPORTED_DATASETS)} or None, got {dataset!r}"
    )


def _label_position(ymin: int, ymax: int) -> int:
    # videoflow's placement: above the box when there is room, else just inside it.
    return ymin - 15 if ymin - 15 > 15 else min(ymin + 15, ymax)


class BoundingBoxAnnotator(ImageAnnotator):
    """Draw detection boxes and their ``label: score%`` on each frame (videoflow's signature).

    ``process(im, boxes)`` takes boxes as an ``(nb_boxes, 6)`` array of
    ``[ymin, xmin, ymax, xmax, class_index, score]`` in pixels, as the detectors emit.
    Class names come from ``class_labels`` (a dict), else ``class_labels_path`` (a
    ``.pbtxt`` label map, read at construction), else ``class_labels_dataset``:
    ``"coco"`` is bundled, the other datasets videoflow downloads are not (give their
    file as ``class_labels_path``), and ``None`` labels boxes with their class number.
    A class missing from the labels is shown by its number.  Colors are in the
    frame's channel order.

    A box holding a NaN or infinite value raises ``ValueError`` naming the node and
    the box.  Finite coordinates outside the frame are fine, however large
    (``1e12``): they are clipped to just outside the frame before drawing, so the
    edges inside the frame are drawn and the others are not.
    """

    def __init__(
        self,
        class_labels_path: str | os.PathLike[str] | None = None,
        class_labels_dataset: str | None = "coco",
        box_color: Color = (255, 225, 0),
        box_thickness: int = 2,
        text_color: Color = (255, 255, 0),
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        class_labels: Mapping[int, str] | None = None,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        self._set_box_style(box_color, box_thickness, text_color)
        self.labels = load_labels(self.describe(), class_labels, class_labels_path, class_labels_dataset)

    def _annotate(self, im: Image, annotations: Any) -> Image:
        """Draw each ``[ymin, xmin, ymax, xmax, class_index, score]`` box and its label."""
        for row in _boxes(self.describe(), annotations, 6, "[ymin, xmin, ymax, xmax, class_index, score]"):
            ymin, xmin, ymax, xmax = _corners(row, im, self.box_thickness + 2)
            klass = int(row[4])
            label = f"{self.labels.get(klass, str(klass))}: {row[5] * 100:.2f}%"
            cv2.rectangle(im, (xmin, ymin), (xmax, ymax), self.box_color, self.box_thickness)
            cv2.putText(im, label, (xmin, _label_position(ymin, ymax)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        self.text_color, lineType=cv2.LINE_AA)
        return im


class TrackerAnnotator(ImageAnnotator):
    """Draw tracked boxes and their track ids on each frame (videoflow's signature).

    ``process(im, boxes)`` takes an ``(nb_boxes, 5)`` array of
    ``[ymin, xmin, ymax, xmax, track_id]`` in pixels.  Boxes are checked and clipped
    as ``BoundingBoxAnnotator``'s: NaN or infinite values raise ``ValueError`` naming
    the node, coordinates far outside the frame are clipped to just outside it.
    """

    def __init__(
        self,
        box_color: Color = (255, 225, 0),
        box_thickness: int = 2,
        text_color: Color = (255, 255, 255),
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        self._set_box_style(box_color, box_thickness, text_color)

    def _annotate(self, im: Image, annotations: Any) -> Image:
        """Draw each ``[ymin, xmin, ymax, xmax, track_id]`` box and its id."""
        for row in _boxes(self.describe(), annotations, 5, "[ymin, xmin, ymax, xmax, track_id]"):
            ymin, xmin, ymax, xmax = _corners(row, im, self.box_thickness + 2)
            cv2.rectangle(im, (xmin, ymin), (xmax, ymax), self.box_color, self.box_thickness)
            cv2.putText(im, str(int(row[4])), (xmin, _label_position(ymin, ymax)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        self.text_color, lineType=cv2.LINE_AA)
        return im
