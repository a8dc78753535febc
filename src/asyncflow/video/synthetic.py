"""Synthetic video for tests and demos: textured shapes moving over a textured background, fully deterministic.

``clip_frame(i, size)`` draws frame ``i``; ``clip_boxes(i, size)`` says where each
shape is in it; ``make_clip(path, ...)`` writes frames ``0 .. nb_frames - 1`` to a
video file.  The same arguments always give the same pixels.
"""

from __future__ import annotations

import functools
import os

import cv2
import numpy as np
import numpy.typing as npt

from asyncflow.video._common import Image, fourcc_for

__all__ = ["clip_boxes", "clip_frame", "make_clip"]

# Each shape: kind, BGR color, half-size as a fraction of the frame height, and its
# motion: start and speed (fractions of the free range per frame) along x and y.
_SHAPES: tuple[tuple[str, tuple[int, int, int], float, tuple[float, float], tuple[float, float]], ...] = (
    ("circle", (40, 40, 230), 0.09, (0.05, 0.25), (0.011, 0.0)),
    ("rectangle", (40, 200, 40), 0.08, (0.70, 0.10), (-0.008, 0.013)),
    ("circle", (230, 120, 30), 0.07, (0.30, 0.85), (0.006, -0.009)),
)


def _bounce(start: float, speed: float, index: int) -> float:
    """Position in [0, 1] of a point moving at ``speed`` from ``start``, bouncing off both ends."""
    t = (start + speed * index) % 2.0
    return 2.0 - t if t > 1.0 else t


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    if int(width) != width or int(height) != height or width < 16 or height < 16:
        raise ValueError(f"size must be (width, height), two ints >= 16, got {size!r}")
    return int(width), int(height)


@functools.lru_cache(maxsize=4)
def _background(width: int, height: int) -> npt.NDArray[np.uint8]:
    """A gradient with a fixed grain and a faint grid: texture that does not move."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.empty((height, width, 3), np.float32)
    base[..., 0] = 60 + 80 * xs / max(width - 1, 1)
    base[..., 1] = 50 + 60 * ys / max(height - 1, 1)
    base[..., 2] = 70 + 40 * (xs + ys) / max(width + height - 2, 1)
    grain = np.random.default_rng(20240501).integers(-6, 7, size=(height, width, 1)).astype(np.float32)
    grid = ((xs.astype(np.int32) % 32 == 0) | (ys.astype(np.int32) % 32 == 0))[..., None] * 18.0
    background: npt.NDArray[np.uint8] = np.clip(base + grain + grid, 0, 255).astype(np.uint8)
    background.setflags(write=False)
    return background


def clip_boxes(index: int, size: tuple[int, int] = (640, 360)) -> npt.NDArray[np.int32]:
    """Where each shape is in frame ``index``: an ``(nb_shapes, 4)`` array of ``[ymin, xmin, ymax, xmax]``.

    Boxes use videoflow's order (rows first); ``ymax`` and ``xmax`` are inclusive.
    """
    width, height = _check_size(size)
    boxes = []
    for _kind, _color, half_fraction, (x0, y0), (vx, vy) in _SHAPES:
        half = max(2, round(half_fraction * height))
        cx = half + round(_bounce(x0, vx, index) * (width - 1 - 2 * half))
        cy = half + round(_bounce(y0, vy, index) * (height - 1 - 2 * half))
        boxes.append((cy - half, cx - half, cy + half, cx + half))
    return np.array(boxes, dtype=np.int32)


def clip_frame(index: int, size: tuple[int, int] = (640, 360)) -> Image:
    """Frame ``index`` of the synthetic clip: a BGR ``uint8`` array of shape ``(height, width, 3)``."""
    width, height = _check_size(size)
    frame = _background(width, height).copy()
    for (kind, color, _half, _start, _speed), (ymin, xmin, ymax, xmax) in zip(
        _SHAPES, clip_boxes(index, size).tolist(), strict=True
    ):
        # Each shape is a checkerboard of its color and a darker shade that moves
        # with it: textured, like real objects, so its inside changes as it moves.
        side_y, side_x = ymax - ymin + 1, xmax - xmin + 1
        cell = max(2, side_y // 6)
        ys, xs = np.mgrid[0:side_y, 0:side_x]
        dark = ((ys // cell + xs // cell) % 2).astype(bool)
        patch = np.empty((side_y, side_x, 3), np.uint8)
        patch[:] = color
        patch[dark] = [channel // 2 for channel in color]
        mask = np.zeros((side_y, side_x), np.uint8)
        if kind == "circle":
            cv2.circle(mask, (side_x // 2, side_y // 2), (side_x - 1) // 2, 255, thickness=-1)
        else:
            mask[:] = 255
        region = frame[ymin : ymax + 1, xmin : xmax + 1]
        region[mask > 0] = patch[mask > 0]
    return frame


def make_clip(
    path: str | os.PathLike[str], nb_frames: int = 300, size: tuple[int, int] = (640, 360), fps: float = 30
) -> str:
    """Write ``nb_frames`` frames of the synthetic clip to ``path`` (``.mp4`` or ``.avi``) and return the path.

    ``size`` is ``(width, height)``, as OpenCV counts it.  Raises ``ValueError`` for
    another container or bad arguments, ``OSError`` when OpenCV cannot write the file.
    """
    target = os.fspath(path)
    fourcc = fourcc_for(target)
    if fourcc is None:
        raise ValueError(f"make_clip writes .mp4 or .avi files, got {target!r}")
    if isinstance(nb_frames, bool) or not isinstance(nb_frames, int) or nb_frames < 1:
        raise ValueError(f"nb_frames must be an int >= 1, got {nb_frames!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    width, height = _check_size(size)
    writer = cv2.VideoWriter(target, cv2.VideoWriter.fourcc(*fourcc), float(fps), (width, height))
    try:
        if not writer.isOpened():
            raise OSError(f"make_clip: OpenCV cannot write {target!r} (does its folder exist?)")
        for index in range(nb_frames):
            writer.write(clip_frame(index, (width, height)))
    finally:
        writer.release()
    return target
