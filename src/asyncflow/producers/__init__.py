"""Built-in producers: the sources of a flow.

The video producers (the readers, and ``SyntheticCamera``, a paced live source)
need the ``video`` extra (OpenCV, numpy); they are imported on first use, so
``import asyncflow.producers`` does not import OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncflow._lazy import lazy_exports

from .basic import IntProducer, IterableProducer
from .host import FeedClosedError, FeedProducer

if TYPE_CHECKING:
    from .video import (
        ImageFolderReader,
        ImageProducer,
        SyntheticCamera,
        VideoDeviceReader,
        VideoFileReader,
        VideofileReader,
        VideostreamReader,
        VideoUrlReader,
    )

__all__ = [
    "FeedClosedError",
    "FeedProducer",
    "ImageFolderReader",
    "ImageProducer",
    "IntProducer",
    "IterableProducer",
    "SyntheticCamera",
    "VideoDeviceReader",
    "VideoFileReader",
    "VideoUrlReader",
    "VideofileReader",
    "VideostreamReader",
]

_VIDEO = "asyncflow.producers.video"
__getattr__ = lazy_exports(
    __name__,
    {
        name: _VIDEO
        for name in (
            "ImageFolderReader",
            "ImageProducer",
            "SyntheticCamera",
            "VideoDeviceReader",
            "VideoFileReader",
            "VideoUrlReader",
            "VideofileReader",
            "VideostreamReader",
        )
    },
)
