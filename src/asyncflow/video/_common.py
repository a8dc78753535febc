"""Argument checks and conventions shared by the video nodes (frames, sizes, colors, containers)."""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from asyncflow.core.errors import NodeConfigError

__all__ = [
    "FOURCCS",
    "Color",
    "Image",
    "as_image",
    "check_bool",
    "check_color",
    "check_int",
    "check_nb_frames",
    "check_path",
    "check_real",
    "check_size",
    "fourcc_for",
]

#: A frame: ``(height, width, 3)`` (BGR unless said otherwise) or ``(height, width)``, usually ``uint8``.
Image: TypeAlias = npt.NDArray[Any]
Color: TypeAlias = tuple[float, float, float]

#: The codec each supported container is written with.
FOURCCS = {".mp4": "mp4v", ".avi": "MJPG"}


def fourcc_for(path: str) -> str | None:
    """The FOURCC code ``path``'s extension is written with, ``None`` if the container is not supported."""
    return FOURCCS.get(os.path.splitext(path)[1].lower())


def check_path(owner: str, arg: str, value: object) -> str:
    """``value`` as a non-empty path string, or ``NodeConfigError`` naming ``owner``."""
    if not isinstance(value, (str, os.PathLike)):
        raise NodeConfigError(f"{owner}: {arg} must be a str or a path, got {value!r} ({type(value).__name__})")
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise NodeConfigError(f"{owner}: {arg} must be a non-empty str path, got {value!r}")
    return path


def check_bool(owner: str, arg: str, value: object) -> bool:
    """``value`` if it is a bool, else ``NodeConfigError`` naming ``owner``."""
    if not isinstance(value, (bool, np.bool_)):
        raise NodeConfigError(f"{owner}: {arg} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_int(owner: str, arg: str, value: object, minimum: int) -> int:
    """``value`` as an int ``>= minimum``, else ``NodeConfigError`` naming ``owner``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise NodeConfigError(f"{owner}: {arg} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise NodeConfigError(f"{owner}: {arg} must be >= {minimum}, got {value}")
    return int(value)


def check_real(owner: str, arg: str, value: object, minimum: float, *, strict: bool = False) -> float:
    """``value`` as a finite float ``>= minimum`` (``> minimum`` when ``strict``), else ``NodeConfigError``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise NodeConfigError(f"{owner}: {arg} must be a finite number, got {value!r} ({type(value).__name__})")
    if value < minimum or (strict and value == minimum):
        raise NodeConfigError(f"{owner}: {arg} must be {'>' if strict else '>='} {minimum}, got {value}")
    return float(value)


def check_nb_frames(owner: str, value: object) -> int:
    """``value`` as a frame budget: an int ``>= 0``, or ``-1`` for every frame."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < -1:
        raise NodeConfigError(f"{owner}: nb_frames must be an int >= 0, or -1 for every frame, got {value!r}")
    return int(value)


def check_size(owner: str, arg: str, value: object, names: tuple[str, str]) -> tuple[int, int]:
    """``value`` as a pair of positive ints (``names`` says which is which, for the message)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise NodeConfigError(f"{owner}: {arg} must be a pair ({names[0]}, {names[1]}), got {value!r}")
    first, second = value
    return check_int(owner, f"{arg}[0] ({names[0]})", first, 1), check_int(owner, f"{arg}[1] ({names[1]})", second, 1)


def check_color(owner: str, arg: str, value: object) -> Color:
    """``value`` as a color: three numbers between 0 and 255, in the frame's channel order."""
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise NodeConfigError(f"{owner}: {arg} must be three numbers between 0 and 255, got {value!r}")
    channels = [check_real(owner, arg, channel, 0) for channel in value]
    if any(channel > 255 for channel in channels):
        raise NodeConfigError(f"{owner}: {arg} must be three numbers between 0 and 255, got {value!r}")
    return channels[0], channels[1], channels[2]


def as_image(owner: str, im: object, arg: str = "image") -> Image:
    """``im`` if it is an image array (2-D, or 3-D with 1, 3 or 4 channels), else ``TypeError`` naming ``owner``.

    A reader's ``(frame_index, frame)`` pair gets a hint to split it first.
    """
    if isinstance(im, np.ndarray) and (im.ndim == 2 or (im.ndim == 3 and im.shape[2] in (1, 3, 4))) and im.size:
        return im
    if isinstance(im, tuple) and len(im) == 2 and isinstance(im[1], np.ndarray):
        raise TypeError(
            f"{owner}: {arg} must be an image array, got a (frame_index, frame) pair as the video readers emit: "
            "put a FrameIndexSplitter() between them, or build the reader with with_index=False"
        )
    described = f"array of shape {im.shape}" if isinstance(im, np.ndarray) else type(im).__name__
    raise TypeError(
        f"{owner}: {arg} must be an image array of shape (height, width[, channels]), got {described}"
    )
