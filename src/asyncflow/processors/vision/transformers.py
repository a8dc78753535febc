"""Image transformers: resize, crop and mask frames (videoflow's), and split a reader's ``(index, frame)`` pairs.

Each returns a new array and leaves its input untouched.  Boxes follow
videoflow's convention: ``[ymin, xmin, ymax, xmax]`` in pixels.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, OnError, ProcessorNode
from asyncflow.video._common import Image, as_image, check_bool, check_size

__all__ = ["CropImageTransformer", "FrameIndexSplitter", "MaskImageTransformer", "ResizeImageTransformer"]


class FrameIndexSplitter(ProcessorNode):
    """Turn a video reader's ``(frame_index, frame)`` pair into the frame alone.

    videoflow's README defines this node in user code; it is built in here.
    """

    def process(self, data: tuple[int, Image]) -> Image:
        """Return the frame of the pair."""
        try:
            _index, frame = data
        except (TypeError, ValueError):
            raise TypeError(
                f"{self.describe()}: expected a (frame_index, frame) pair, got {type(data).__name__}"
            ) from None
        return frame


class ResizeImageTransformer(ProcessorNode):
    """Resize each frame, to the size a second input gives (videoflow) or to a fixed ``size``.

    - With two parents, ``process(im, new_size)`` resizes to ``new_size``, which is
      ``(new_height, new_width)`` as in videoflow.
    - With one parent, the frame is resized to ``size``, which is
      ``(width, height)`` as OpenCV and ``make_clip`` count it.  A ``new_size`` input,
      when there is one, wins over ``size``.
    - ``maintain_ratio=True`` keeps the aspect ratio: the frame is scaled to fit
      inside the target and padded with black at the bottom and right (as videoflow
      does), so box coordinates only need scaling.

    The output keeps the input's axes either way: an ``(h, w)`` gray frame gives
    ``(height, width)``, an ``(h, w, c)`` frame ``(height, width, c)``, a single
    channel ``(h, w, 1)`` included (OpenCV's resize alone would drop that axis).
    """

    def __init__(
        self,
        maintain_ratio: bool = False,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        size: tuple[int, int] | None = None,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        self.maintain_ratio = check_bool(self.describe(), "maintain_ratio", maintain_ratio)
        self.size = None if size is None else check_size(self.describe(), "size", size, ("width", "height"))

    def process(self, im: Image, new_size: tuple[int, int] | None = None) -> Image:
        """Return ``im`` resized to ``new_size`` (height, width) or else to ``size`` (width, height)."""
        image = as_image(self.describe(), im)
        if new_size is not None:
            try:
                height, width = check_size(self.describe(), "new_size", tuple(new_size), ("height", "width"))
            except NodeConfigError as exc:
                raise ValueError(str(exc)) from None
        elif self.size is not None:
            width, height = self.size
        else:
            raise ValueError(
                f"{self.describe()} has no target size: give it size=(width, height) "
                "or a second parent that sends (height, width)"
            )
        if not self.maintain_ratio:
            resized: Image = cv2.resize(image, (width, height))
            # cv2.resize returns (height, width) for a (h, w, 1) image: keep its channel axis.
            return resized.reshape(height, width, *image.shape[2:])
        scale = min(height / image.shape[0], width / image.shape[1])
        fit_h = min(height, max(1, round(image.shape[0] * scale)))
        fit_w = min(width, max(1, round(image.shape[1] * scale)))
        out = np.zeros((height, width, *image.shape[2:]), dtype=image.dtype)
        out[:fit_h, :fit_w] = cv2.resize(image, (fit_w, fit_h)).reshape(fit_h, fit_w, *image.shape[2:])
        return out


def _check_crops(owner: str, crops: object) -> npt.NDArray[np.int64]:
    """``crops`` as an ``(nb_boxes, 4)`` int array of ``[ymin, xmin, ymax, xmax]``, or ``ValueError``."""
    try:
        array = np.asarray(crops, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: crop_dimensions must be numbers, got {crops!r:.200}") from None
    if array.ndim == 1 and array.shape[0] == 4:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(
            f"{owner}: crop_dimensions must have shape (nb_boxes, 4) of [ymin, xmin, ymax, xmax], "
            f"got shape {array.shape}"
        )
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"{owner}: crop_dimensions must be finite and >= 0, got {array.tolist()}")
    if (array[:, 0] > array[:, 2]).any() or (array[:, 1] > array[:, 3]).any():
        raise ValueError(f"{owner}: crop_dimensions need ymin <= ymax and xmin <= xmax, got {array.tolist()}")
    return array.astype(np.int64)


class CropImageTransformer(ProcessorNode):
    """Cut boxes out of each frame: ``process(im, crop_dimensions)`` returns one array per box (videoflow's).

    ``crop_dimensions`` is an ``(nb_boxes, 4)`` array of ``[ymin, xmin, ymax, xmax]``
    (pixels; ``ymax`` and ``xmax`` exclusive, coordinates truncated to ints), given
    as a second input or fixed at construction; the input wins.  A negative
    coordinate, ``ymin > ymax`` or ``xmin > xmax``, or a box reaching outside the
    frame raises ``ValueError`` naming the node.  The crops are copies.
    """

    def __init__(
        self,
        crop_dimensions: npt.ArrayLike | None = None,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        if crop_dimensions is None:
            self.crop_dimensions: npt.NDArray[np.int64] | None = None
        else:
            try:
                self.crop_dimensions = _check_crops(self.describe(), crop_dimensions)
            except ValueError as exc:
                raise NodeConfigError(str(exc)) from None

    def process(self, im: Image, crop_dimensions: npt.ArrayLike | None = None) -> list[Image]:
        """Return the crops of ``im``, one per box, in the boxes' order."""
        image = as_image(self.describe(), im)
        if crop_dimensions is not None:
            crops = _check_crops(self.describe(), crop_dimensions)
        elif self.crop_dimensions is not None:
            crops = self.crop_dimensions
        else:
            raise ValueError(
                f"{self.describe()} has no crop dimensions: give it crop_dimensions=[[ymin, xmin, ymax, xmax], ...] "
                "or a second parent that sends them"
            )
        height, width = image.shape[:2]
        if (crops[:, 2] > height).any() or (crops[:, 3] > width).any():
            raise ValueError(
                f"{self.describe()}: a crop reaches outside the {height}x{width} frame: {crops.tolist()}"
            )
        return [image[ymin:ymax, xmin:xmax].copy() for ymin, xmin, ymax, xmax in crops.tolist()]


class MaskImageTransformer(ProcessorNode):
    """Multiply each frame by a mask: ``process(im, mask)``, ``mask`` of shape ``(height, width)`` in [0, 1].

    Returns a ``uint8`` array (values truncated, as videoflow does).  A mask whose
    height and width differ from the frame's raises ``ValueError`` naming the node.
    """

    def process(self, im: Image, mask: Any) -> Image:
        """Return ``im * mask`` as ``uint8``."""
        image = as_image(self.describe(), im)
        weights = np.asarray(mask, dtype=np.float32)
        if weights.ndim == 3 and weights.shape[2] == 1:
            weights = weights[..., 0]
        if weights.shape != image.shape[:2]:
            raise ValueError(
                f"{self.describe()}: mask has shape {weights.shape}, the frame is {image.shape[:2]} "
                "(they must have the same height and width)"
            )
        if image.ndim == 3:
            weights = weights[..., None]
        masked: Image = np.clip(image.astype(np.float32) * weights, 0, 255).astype(np.uint8)
        return masked
