"""videoflow's ``videoflow.consumers.video``: ``VideofileWriter`` with videoflow's defaults (needs OpenCV).

``VideofileWriter(video_file, swap_channels=True, fps=30)``: asyncflow's writer,
defaulting as videoflow's did to ``swap_channels=True``, i.e. it takes RGB frames
(what videoflow's stream readers and ``ImageProducer`` emit) and writes them as
BGR.  Frames from ``VideoFileReader`` (BGR, as in videoflow) need
``swap_channels=False`` -- videoflow's defaults swapped them too.  Beyond videoflow:
``.mp4`` files as well as ``.avi``, and asyncflow's keyword-only ``name`` and
``on_error``.
"""

from __future__ import annotations

import os

from asyncflow.consumers import video as _video
from asyncflow.core.node import OnError

__all__ = ["VideofileWriter"]


class VideofileWriter(_video.VideofileWriter):
    """asyncflow's ``VideofileWriter`` with videoflow's default ``swap_channels=True`` (it takes RGB frames)."""

    def __init__(
        self,
        video_file: str | os.PathLike[str],
        swap_channels: bool = True,
        fps: float = 30,
        *,
        name: str | None = None,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(video_file, swap_channels, fps, name=name, on_error=on_error)
