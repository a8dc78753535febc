"""Video consumer: write the frames it receives to an ``.mp4`` or ``.avi`` file (videoflow's ``VideofileWriter``)."""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import ConsumerNode, OnError
from asyncflow.video._common import FOURCCS, Image, as_image, check_bool, check_path, check_real, fourcc_for

__all__ = ["VideofileWriter"]


class VideofileWriter(ConsumerNode):
    """Write each frame it receives to a video file, overwriting the file (videoflow's signature).

    The container follows the extension: ``.mp4`` (codec ``mp4v``) or ``.avi``
    (``MJPG``); another extension raises ``NodeConfigError`` naming the node at
    construction.  Frames are BGR ``uint8`` arrays, as the readers emit them
    (``swap_channels=True`` takes RGB frames); gray frames ``(height, width)``, such
    as ``EdgeDetector``'s edge maps, are written as gray video.

    The file is opened on the first frame, whose size sets the video's; a later
    frame of another size is resized to the first frame's size.  Codecs need even
    sizes (``mp4v`` and ``MJPG`` would cut an odd last row or column off), so an odd
    height or width is padded to the next even number by repeating the frame's last
    row or column once: a 33x17 frame makes a 34x18 video whose top-left 33x17
    pixels are the frame, nothing cut.  The folder must exist: opening fails
    with ``OSError`` naming the node otherwise.  ``close()`` finishes the file; a
    writer that received no frame writes no file.  ``frames_written`` counts the
    frames of the current run.
    """

    def __init__(
        self,
        video_file: str | os.PathLike[str],
        swap_channels: bool = False,
        fps: float = 30,
        *,
        name: str | None = None,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(name=name, on_error=on_error)
        owner = self.describe()
        self.video_file = check_path(owner, "video_file", video_file)
        fourcc = fourcc_for(self.video_file)
        if fourcc is None:
            raise NodeConfigError(
                f"{owner}: video_file must end in {' or '.join(FOURCCS)} (the container follows the extension), "
                f"got {self.video_file!r}"
            )
        self.fourcc = fourcc
        self.swap_channels = check_bool(owner, "swap_channels", swap_channels)
        self.fps = check_real(owner, "fps", fps, 0, strict=True)
        self.frames_written = 0
        self._writer: Any = None
        self._size: tuple[int, int] | None = None  # (width, height) of the first frame; frames are resized to it
        self._pad = (0, 0)  # rows added at the bottom, columns at the right: the video's size is even
        self._color = True

    def open(self) -> None:
        """Get ready for a new file; the file itself is opened by the first frame (its size sets the video's)."""
        self.frames_written = 0
        self._size = None
        self._pad = (0, 0)

    def _open_writer(self, frame: Image) -> Any:
        height, width = frame.shape[:2]
        pad_rows, pad_cols = height % 2, width % 2
        writer = cv2.VideoWriter(
            self.video_file,
            cv2.VideoWriter.fourcc(*self.fourcc),
            self.fps,
            (width + pad_cols, height + pad_rows),
            frame.ndim == 3,
        )
        if not writer.isOpened():
            writer.release()
            folder = os.path.dirname(os.path.abspath(self.video_file))
            hint = "" if os.path.isdir(folder) else f" (its folder {folder!r} does not exist)"
            raise OSError(f"{self.describe()}: OpenCV cannot write {self.video_file!r}{hint}")
        self._size = (width, height)
        self._pad = (pad_rows, pad_cols)
        self._color = frame.ndim == 3
        return writer

    def consume(self, item: Image) -> None:
        """Append the frame to the video, opening the file on the first frame."""
        frame = as_image(self.describe(), item, "frame")
        if frame.dtype != np.uint8:
            raise TypeError(f"{self.describe()}: frames must be uint8 arrays, got {frame.dtype}")
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[..., 0]
        elif frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGBA2BGR if self.swap_channels else cv2.COLOR_BGRA2BGR)
        elif frame.ndim == 3 and self.swap_channels:
            frame = frame[..., ::-1]
        if self._writer is None:
            self._writer = self._open_writer(frame)
        assert self._size is not None
        if frame.ndim == 3 and not self._color:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        elif frame.ndim == 2 and self._color:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        pad_rows, pad_cols = self._pad
        if pad_rows or pad_cols:
            # Even sizes for the codec: repeat the last row / column rather than lose one.
            frame = cv2.copyMakeBorder(frame, 0, pad_rows, 0, pad_cols, cv2.BORDER_REPLICATE)
        self._writer.write(np.ascontiguousarray(frame))
        self.frames_written += 1

    def close(self) -> None:
        """Finish and close the video file."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_writer"] = None  # a writer does not pickle; the first frame opens one in the new process
        return state
