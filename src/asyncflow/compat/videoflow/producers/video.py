"""videoflow's ``videoflow.producers.video``: the image and video readers (need the ``video`` extra: OpenCV).

The classes are asyncflow's readers (:mod:`asyncflow.producers.video`), with
videoflow's defaults where asyncflow's differ:

- ``VideostreamReader(url_or_deviceid, swap_channels=True, nb_frames=-1, nb_retries=0)``,
  ``VideoUrlReader(url, nb_frames=-1, nb_retries=0)`` and
  ``VideoDeviceReader(device_id, nb_frames=-1, nb_retries=0)`` emit RGB frames by
  default (``swap_channels=True``), as videoflow's did; asyncflow's emit OpenCV's BGR.
  Here they are subclasses of asyncflow's classes, and the URL and device readers
  of this module's ``VideostreamReader`` too, as in videoflow.
- ``ImageProducer(image_path)`` emits the image as RGB (``swap_channels=True``), as
  videoflow's did.
- ``VideoFileReader(video_file, swap_channels=False, nb_frames=-1)`` (and its old
  name ``VideofileReader``) is asyncflow's own: same defaults (BGR).
- ``ImageFolderReader(folder)`` is asyncflow's (videoflow's was never implemented:
  it took no folder and its ``open()`` raised).
- ``VideoFolderReader`` was never implemented in videoflow either; building one
  raises ``NotImplementedError`` saying what to use.

Every reader emits ``(frame_index, frame)`` pairs, as videoflow's did (frame
indexes count from 1); asyncflow's keyword-only extras (``with_index``, ``name``,
``realtime`` for files) are accepted too.
"""

from __future__ import annotations

import os

from asyncflow.core.node import ProducerNode
from asyncflow.producers import video as _video
from asyncflow.producers.video import ImageFolderReader, VideoFileReader, VideofileReader

from .._unavailable import unavailable

__all__ = [
    "ImageFolderReader",
    "ImageProducer",
    "VideoDeviceReader",
    "VideoFileReader",
    "VideoFolderReader",
    "VideoUrlReader",
    "VideofileReader",
    "VideostreamReader",
]


class VideostreamReader(_video.VideostreamReader):
    """asyncflow's ``VideostreamReader`` with videoflow's default: RGB frames (``swap_channels=True``)."""

    def __init__(
        self,
        url_or_deviceid: int | str | os.PathLike[str],
        swap_channels: bool = True,
        nb_frames: int = -1,
        nb_retries: int = 0,
        *,
        with_index: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(url_or_deviceid, swap_channels, nb_frames, nb_retries, with_index=with_index, name=name)


class VideoUrlReader(_video.VideoUrlReader, VideostreamReader):
    """asyncflow's ``VideoUrlReader`` with videoflow's default: RGB frames (``swap_channels=True``)."""

    def __init__(
        self,
        url: str,
        nb_frames: int = -1,
        nb_retries: int = 0,
        *,
        swap_channels: bool = True,
        with_index: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(url, nb_frames, nb_retries, swap_channels=swap_channels, with_index=with_index, name=name)


class VideoDeviceReader(_video.VideoDeviceReader, VideostreamReader):
    """asyncflow's ``VideoDeviceReader`` with videoflow's default: RGB frames (``swap_channels=True``)."""

    def __init__(
        self,
        device_id: int | str,
        nb_frames: int = -1,
        nb_retries: int = 0,
        *,
        swap_channels: bool = True,
        with_index: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(
            device_id, nb_frames, nb_retries, swap_channels=swap_channels, with_index=with_index, name=name
        )


class ImageProducer(_video.ImageProducer):
    """asyncflow's ``ImageProducer`` with videoflow's default: the image as RGB (``swap_channels=True``)."""

    def __init__(
        self, image_path: str | os.PathLike[str], *, swap_channels: bool = True, name: str | None = None
    ) -> None:
        super().__init__(image_path, swap_channels=swap_channels, name=name)


class VideoFolderReader(ProducerNode):
    """videoflow's unimplemented folder-of-videos reader: building one raises ``NotImplementedError``."""

    def __init__(self) -> None:
        unavailable(
            "VideoFolderReader",
            "was never implemented (its open() and next() raised NotImplementedError): read each video "
            "with VideoFileReader (one flow per file, or several producers), or a folder of frames "
            "with ImageFolderReader(folder)",
        )
