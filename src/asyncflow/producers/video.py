"""Video producers: the frames of a video file, a camera, a stream URL, a folder of images, or one image.

Frames are ``numpy`` arrays of shape ``(height, width, 3)`` and dtype ``uint8`` in
OpenCV's BGR channel order (``swap_channels=True`` gives RGB).  As in videoflow, the
video readers emit ``(frame_index, frame)`` pairs, the index counting from 1; build
them with ``with_index=False`` to get the frames alone, or put a
``FrameIndexSplitter`` after them.

The video readers decode into one buffer that they reuse: a frame returned by
``next()`` is overwritten by the next call.  The engine fixes each item as it is
returned (docs/design.md#fixing-outputs), so this is invisible in a flow; code that calls ``next()``
itself must copy the frames it keeps.

Live sources: ``SyntheticCamera`` emits the synthetic clip on a fixed schedule, as
a camera does, and ``VideoFileReader(..., realtime=True)`` plays a file at its frame
rate.  Both keep to their clock whatever happens downstream: early, they wait for
the frame's time; late, they skip the frames whose time has passed and emit the
one that is current, never a backlog.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import time
from typing import Any

import cv2
import numpy as np

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import ProducerNode
from asyncflow.video._common import (
    Image,
    check_bool,
    check_int,
    check_nb_frames,
    check_path,
    check_real,
    check_size,
)
from asyncflow.video.synthetic import clip_frame

__all__ = [
    "ImageFolderReader",
    "ImageProducer",
    "SyntheticCamera",
    "VideoDeviceReader",
    "VideoFileReader",
    "VideoUrlReader",
    "VideofileReader",
    "VideostreamReader",
]

logger = logging.getLogger(__name__)

#: File extensions ``ImageFolderReader`` reads (those ``cv2.imread`` decodes).
IMAGE_EXTENSIONS = frozenset(
    {".bmp", ".dib", ".jpeg", ".jpg", ".jpe", ".jp2", ".png", ".webp", ".pbm", ".pgm", ".ppm", ".pxm", ".pnm"}
    | {".tiff", ".tif", ".exr", ".hdr", ".pic", ".sr", ".ras"}
)


class VideostreamReader(ProducerNode):
    """Emit the frames of anything ``cv2.VideoCapture`` opens: a file, a stream URL, a camera.

    - ``url_or_deviceid``: a path, a URL or a camera number.
    - ``swap_channels``: emit RGB instead of OpenCV's BGR.
    - ``nb_frames``: stop after this many frames; ``-1`` reads until the source ends.
    - ``nb_retries``: how many times, over the whole run, a failed read reopens the
      source and tries again before the producer stops (for flaky streams).
    - ``with_index``: emit ``(frame_index, frame)`` pairs (videoflow's items, index
      from 1) or, when ``False``, the frames alone.

    ``open()`` opens the capture and raises ``OSError`` naming the node when the
    source cannot be opened; ``close()`` releases it.  ``len_hint`` is the number of
    frames the producer expects to emit, ``None`` when unknown.
    """

    def __init__(
        self,
        url_or_deviceid: int | str | os.PathLike[str],
        swap_channels: bool = False,
        nb_frames: int = -1,
        nb_retries: int = 0,
        *,
        with_index: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        owner = self.describe()
        source: int | str
        if isinstance(url_or_deviceid, (int, np.integer)) and not isinstance(url_or_deviceid, bool):
            source = check_int(owner, "url_or_deviceid", url_or_deviceid, 0)
        else:
            source = check_path(owner, "url_or_deviceid", url_or_deviceid)
        self.source: int | str = source
        self.swap_channels = check_bool(owner, "swap_channels", swap_channels)
        self.nb_frames = check_nb_frames(owner, nb_frames)
        self.nb_retries = check_int(owner, "nb_retries", nb_retries, 0)
        self.with_index = check_bool(owner, "with_index", with_index)
        self._capture: Any = None
        self._buffer: Image | None = None
        self._count = 0
        self._retries = 0
        self._done = False

    # -- hints --------------------------------------------------------------
    @property
    def len_hint(self) -> int | None:
        """How many frames this producer will emit, when known (for progress bars): ``nb_frames`` or ``None``."""
        return self.nb_frames if self.nb_frames >= 0 else None

    # -- lifecycle ----------------------------------------------------------
    def _cannot_open(self) -> OSError:
        return OSError(f"{self.describe()}: cannot open video source {self.source!r}")

    def _open_capture(self) -> Any:
        capture = cv2.VideoCapture(self.source)
        if not capture.isOpened():
            capture.release()
            return None
        return capture

    def open(self) -> None:
        """Open the video source; ``OSError`` naming the node when it cannot be opened."""
        self._count = self._retries = 0
        self._done = False
        capture = self._open_capture()
        while capture is None and self._retries < self.nb_retries:
            self._retries += 1
            logger.warning("%s: cannot open %r, retry %d of %d", self.describe(), self.source, self._retries,
                           self.nb_retries)
            capture = self._open_capture()
        if capture is None:
            raise self._cannot_open()
        self._capture = capture

    def next(self) -> tuple[int, Image] | Image:
        """Return the next ``(frame_index, frame)`` pair (the frame alone without ``with_index``).

        Raises ``StopIteration`` after ``nb_frames`` frames, or when the source ends
        (or keeps failing once ``nb_retries`` is used up).
        """
        if self._done or (self.nb_frames >= 0 and self._count >= self.nb_frames):
            self._finish()
            raise StopIteration
        if self._capture is None:
            raise RuntimeError(f"{self.describe()}: next() was called before open(); call open() first")
        while True:
            ok, frame = self._capture.read(self._buffer)
            if ok and frame is not None:
                break
            if self._retries >= self.nb_retries:
                self._finish()
                raise StopIteration
            self._retries += 1
            logger.warning("%s: reading %r failed, reopening it (retry %d of %d)", self.describe(), self.source,
                           self._retries, self.nb_retries)
            self._capture.release()
            self._capture = cv2.VideoCapture(self.source)
        self._buffer = frame
        self._count += 1
        if self.swap_channels:
            frame = frame[..., ::-1]
        return (self._count, frame) if self.with_index else frame

    def _finish(self) -> None:
        self._done = True
        self.close()

    def close(self) -> None:
        """Release the video source and the frame buffer."""
        capture, self._capture = self._capture, None
        self._buffer = None
        if capture is not None:
            capture.release()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_capture"] = None  # a capture does not pickle; open() makes one in the new process
        state["_buffer"] = None
        return state


class VideoFileReader(VideostreamReader):
    """Emit the frames of a video file, as ``(frame_index, frame)`` pairs (videoflow's signature and items).

    ``nb_frames=-1`` reads the whole file.  ``open()`` raises ``FileNotFoundError``
    naming the node when the file does not exist, ``OSError`` when OpenCV cannot
    decode it.  ``len_hint`` is the file's frame count (as the container declares it,
    capped by ``nb_frames``), read without opening the node.

    ``realtime=True`` plays the file as a camera would film it, at the frame rate
    the file declares (``open()`` raises ``OSError`` naming the node if it declares
    none): frame ``i`` (counted from 0) is due at ``t0 + i / fps``, ``t0`` being the
    first ``next()`` call.  ``next()`` sleeps until the next frame is due when it is
    called early; when it is called late, it skips the frames whose time has passed
    (``VideoCapture.grab``: the codec still decodes what it needs, but the frame is
    neither converted nor returned) and returns the one due most recently, so it
    always emits the frame that is current now, never a backlog.  Items are still
    ``(frame_index, frame)`` with the file's own frame index (it jumps over skipped
    frames).  Skipped frames count toward ``nb_frames`` (which then bounds the file's
    frame index: the play lasts ``nb_frames / fps`` seconds) and ``len_hint`` is an
    upper bound.  ``close()`` logs one line (logger ``asyncflow.producers.video``)
    with the frames emitted and skipped: a warning when some were skipped.  The
    default, ``realtime=False``, reads every frame as fast as it is asked for.
    """

    def __init__(
        self,
        video_file: str | os.PathLike[str],
        swap_channels: bool = False,
        nb_frames: int = -1,
        *,
        with_index: bool = True,
        realtime: bool = False,
        name: str | None = None,
    ) -> None:
        if not isinstance(video_file, (str, os.PathLike)):
            raise NodeConfigError(
                f"{type(self).__name__}: video_file must be a str or a path, got {video_file!r} "
                f"({type(video_file).__name__})"
            )
        super().__init__(video_file, swap_channels, nb_frames, 0, with_index=with_index, name=name)
        self.video_file = str(self.source)
        self.realtime = check_bool(self.describe(), "realtime", realtime)
        self._frame_count: int | None = None
        self._fps = 0.0  # the file's frame rate, read by open() when realtime
        self._t0: float | None = None  # when the first frame was due (realtime)
        self._skipped = 0  # frames skipped for lateness since open() (realtime)

    @property
    def len_hint(self) -> int | None:
        """The number of frames the file declares, capped by ``nb_frames``; ``None`` when unknown."""
        if self._frame_count is None:
            self._frame_count = self._declared_frame_count()
        if self._frame_count < 0:
            return super().len_hint
        return self._frame_count if self.nb_frames < 0 else min(self._frame_count, self.nb_frames)

    @property
    def skipped(self) -> int:
        """Frames skipped for lateness since ``open()`` (always 0 without ``realtime``)."""
        return self._skipped

    def _declared_frame_count(self) -> int:
        capture = self._capture
        if capture is None:
            if not os.path.isfile(self.video_file):
                return -1
            capture = cv2.VideoCapture(self.video_file)
        try:
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else -1
        finally:
            if capture is not self._capture:
                capture.release()
        return count if count > 0 else -1

    def _cannot_open(self) -> OSError:
        if not os.path.exists(self.video_file):
            return FileNotFoundError(f"{self.describe()}: no such video file: {self.video_file!r}")
        return OSError(f"{self.describe()}: OpenCV cannot open {self.video_file!r} as a video")

    def open(self) -> None:
        """Open the file; with ``realtime``, also read its frame rate (``OSError`` naming the node if none)."""
        self._t0 = None
        self._skipped = 0
        super().open()
        if not self.realtime:
            return
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        if not (math.isfinite(fps) and fps > 0):
            self.close()
            raise OSError(
                f"{self.describe()}: {self.video_file!r} declares no frame rate (got {fps!r}); "
                "realtime=True plays a file at its frame rate"
            )
        self._fps = fps

    def next(self) -> tuple[int, Image] | Image:
        """Return the next ``(frame_index, frame)`` pair; with ``realtime``, the frame current now (see the class)."""
        if self.realtime and self._capture is not None and not self._done:
            self._keep_time()
        return super().next()

    def _keep_time(self) -> None:
        """Wait for the next frame's time, or skip the frames whose time has passed (``realtime``)."""
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        position = self._count  # the next frame's position in the file, from 0
        if 0 <= self.nb_frames <= position:
            return  # next() stops
        due = self._t0 + position / self._fps
        if now < due:
            time.sleep(due - now)
            return
        current = int((now - self._t0) * self._fps)  # the frame due most recently
        if self.nb_frames >= 0:
            current = min(current, self.nb_frames)  # past the end: next() stops
        capture = self._capture
        while self._count < current:
            if not capture.grab():
                return  # the file ended: the read in next() fails and stops the reader
            self._count += 1
            self._skipped += 1

    def close(self) -> None:
        """Release the file; with ``realtime``, log how many frames were emitted and skipped."""
        if self.realtime and self._capture is not None and self._t0 is not None:
            emitted = self._count - self._skipped
            logger.log(
                logging.WARNING if self._skipped else logging.INFO,
                "%s: played %s in realtime at %.3g fps: %d frames emitted, %d skipped for lateness",
                self.describe(),
                self.video_file,
                self._fps,
                emitted,
                self._skipped,
            )
        super().close()


#: videoflow's older name, kept so that its users can switch by changing imports.
VideofileReader = VideoFileReader


class VideoDeviceReader(VideostreamReader):
    """Emit the frames of a camera (``device_id`` as OpenCV numbers them), as ``(frame_index, frame)`` pairs.

    Frames are BGR unless ``swap_channels=True``.  ``nb_retries`` failed reads are
    tolerated (the device is reopened) before the producer stops.
    """

    def __init__(
        self,
        device_id: int | str,
        nb_frames: int = -1,
        nb_retries: int = 0,
        *,
        swap_channels: bool = False,
        with_index: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(device_id, swap_channels, nb_frames, nb_retries, with_index=with_index, name=name)
        self.device_id = self.source

    def _cannot_open(self) -> OSError:
        return OSError(f"{self.describe()}: cannot open video device {self.device_id!r}")


class VideoUrlReader(VideostreamReader):
    """Emit the frames of a video stream URL (RTSP, HTTP, ...), as ``(frame_index, frame)`` pairs.

    Frames are BGR unless ``swap_channels=True``.  ``nb_retries`` failed reads are
    tolerated (the stream is reopened) before the producer stops.
    """

    def __init__(
        self,
        url: str,
        nb_frames: int = -1,
        nb_retries: int = 0,
        *,
        swap_channels: bool = False,
        with_index: bool = True,
        name: str | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise NodeConfigError(f"{type(self).__name__}: url must be a str, got {url!r} ({type(url).__name__})")
        super().__init__(url, swap_channels, nb_frames, nb_retries, with_index=with_index, name=name)
        self.url = url

    def _cannot_open(self) -> OSError:
        return OSError(f"{self.describe()}: cannot open video stream {self.url!r}")


#: How many recent lateness samples ``SyntheticCamera`` keeps for its percentiles.
LATENESS_SAMPLES = 100_000


class SyntheticCamera(ProducerNode):
    """A live camera stand-in: the synthetic clip's frames on a fixed schedule, as ``(frame_index, frame)`` pairs.

    The frames are those of ``asyncflow.video.synthetic.clip_frame`` (textured
    shapes moving over a textured background, BGR ``uint8``, ``size`` is
    ``(width, height)``): frame ``k`` (counted from 1, as the video readers count)
    is ``clip_frame(k - 1, size)``, due at ``t0 + (k - 1) / fps``, ``t0`` being
    the first ``next()`` call.  Like a camera, it keeps to that clock whatever
    happens downstream: ``next()`` called early waits (``asyncio.sleep``: the
    task's loop stays free) until the next frame is due; called late, it skips the
    frames whose time has passed and emits the one due most recently, so the
    emitted index always tracks the wall clock and a slow consumer never gets a
    backlog.  A frame is drawn before the wait, so that it is handed over on time.

    - ``nb_frames``: the camera's frames ``1 .. nb_frames`` (it films for
      ``nb_frames / fps`` seconds; skipped frames count, so fewer may be emitted),
      then ``StopAsyncIteration``; ``None`` (the default) films for ever, until
      the flow is stopped.  ``len_hint`` is ``nb_frames``.
    - ``fps``: frames per second, > 0.
    - ``size``: ``(width, height)``, each at least 16.
    - ``with_index``: ``False`` emits the frames alone.

    It measures its *lateness*: how long after its due time each emitted frame
    was handed over (0 for a frame on time; scheduler jitter, drawing time, or the
    time a late call took to come).  ``lateness()`` gives its p50, p99 (over the
    last ``LATENESS_SAMPLES`` frames) and max, and ``close()`` logs them with the
    number of frames emitted and skipped, as one line (logger
    ``asyncflow.producers.video``: a warning when frames were skipped, else info).
    ``next()`` is ``async def``: called directly, it is awaited.
    """

    def __init__(
        self,
        nb_frames: int | None = None,
        fps: float = 30.0,
        size: tuple[int, int] = (640, 360),
        *,
        with_index: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        owner = self.describe()
        self.nb_frames = None if nb_frames is None else check_int(owner, "nb_frames", nb_frames, 0)
        self.fps = check_real(owner, "fps", fps, 0, strict=True)
        width, height = check_size(owner, "size", size, ("width", "height"))
        if width < 16 or height < 16:
            raise NodeConfigError(f"{owner}: size must be (width, height), each at least 16, got {size!r}")
        self.size = (width, height)
        self.with_index = check_bool(owner, "with_index", with_index)
        self._opened = False
        self._t0: float | None = None
        self._next_index = 1
        self.emitted = 0
        self.skipped = 0
        self._lateness: collections.deque[float] = collections.deque(maxlen=LATENESS_SAMPLES)
        self._max_lateness = 0.0

    @property
    def len_hint(self) -> int | None:
        """``nb_frames``: the most frames this camera emits (``None`` when endless)."""
        return self.nb_frames

    def open(self) -> None:
        """Start afresh: the clock starts at the first ``next()``."""
        self._opened = True
        self._t0 = None
        self._next_index = 1
        self.emitted = self.skipped = 0
        self._lateness = collections.deque(maxlen=LATENESS_SAMPLES)
        self._max_lateness = 0.0

    async def next(self) -> tuple[int, Image] | Image:
        """Return the frame due now, or wait for the next one (see the class); ``StopAsyncIteration`` at the end."""
        if not self._opened:
            raise RuntimeError(f"{self.describe()}: next() was called before open(); call open() first")
        index, last = self._next_index, self.nb_frames
        if last is not None and index > last:
            raise StopAsyncIteration
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        t0, period = self._t0, 1.0 / self.fps
        current = int((now - t0) * self.fps) + 1  # the frame due most recently
        if current > index:  # late: the frames in between are gone
            if last is not None and current > last:
                self.skipped += last - index + 1
                self._next_index = last + 1
                raise StopAsyncIteration  # the camera's time is up
            self.skipped += current - index
            index = current
        due = t0 + (index - 1) * period
        frame = clip_frame(index - 1, self.size)
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        lateness = max(0.0, time.monotonic() - due)  # a timer may fire a fraction of a millisecond early
        self._lateness.append(lateness)
        if lateness > self._max_lateness:
            self._max_lateness = lateness
        self._next_index = index + 1
        self.emitted += 1
        return (index, frame) if self.with_index else frame

    def lateness(self) -> dict[str, float]:
        """``{"p50": s, "p99": s, "max": s}``: how late the emitted frames were handed over, in seconds."""
        if not self._lateness:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        ordered = sorted(self._lateness)
        last = len(ordered) - 1
        return {
            "p50": ordered[round(0.50 * last)],
            "p99": ordered[round(0.99 * last)],
            "max": self._max_lateness,
        }

    def close(self) -> None:
        """Log the run's summary (frames emitted and skipped, lateness p50 / p99 / max), once per run."""
        if not self._opened:
            return
        self._opened = False
        if self._t0 is None:
            return
        stats = self.lateness()
        logger.log(
            logging.WARNING if self.skipped else logging.INFO,
            "%s: %d frames emitted at %.3g fps, %d skipped for lateness; lateness p50 %.1f ms, p99 %.1f ms, "
            "max %.1f ms",
            self.describe(),
            self.emitted,
            self.fps,
            self.skipped,
            stats["p50"] * 1e3,
            stats["p99"] * 1e3,
            stats["max"] * 1e3,
        )

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_opened"] = False
        state["_t0"] = None
        state["_lateness"] = collections.deque(maxlen=LATENESS_SAMPLES)
        return state


def _read_image(owner: str, path: str, swap_channels: bool) -> Image:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        if not os.path.exists(path):
            raise FileNotFoundError(f"{owner}: no such image file: {path!r}")
        raise OSError(f"{owner}: OpenCV cannot decode {path!r} as an image")
    result: Image = image[..., ::-1] if swap_channels else image
    return result


class ImageFolderReader(ProducerNode):
    """Emit the images of a folder in alphabetical order of their names, as ``(frame_index, frame)`` pairs.

    A folder of frames stands in for a video file, so its items are the video
    readers' (``with_index=False``: the images alone); name the files with
    zero-padded numbers (``frame_0001.png``) for frame order.  Files whose extension
    is not an image format OpenCV reads are skipped; one that OpenCV cannot decode
    raises ``OSError`` naming the node and the file.  The folder is listed by
    ``open()`` (``FileNotFoundError`` if it does not exist); ``len_hint`` is the
    number of image files.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        swap_channels: bool = False,
        with_index: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        owner = self.describe()
        self.folder = check_path(owner, "folder", folder)
        self.swap_channels = check_bool(owner, "swap_channels", swap_channels)
        self.with_index = check_bool(owner, "with_index", with_index)
        self._files: list[str] | None = None
        self._position = 0

    def _list(self) -> list[str]:
        if not os.path.exists(self.folder):
            raise FileNotFoundError(f"{self.describe()}: no such image folder: {self.folder!r}")
        if not os.path.isdir(self.folder):
            raise NotADirectoryError(f"{self.describe()}: {self.folder!r} is not a folder")
        return [
            os.path.join(self.folder, entry)
            for entry in sorted(os.listdir(self.folder))
            if os.path.splitext(entry)[1].lower() in IMAGE_EXTENSIONS
            and os.path.isfile(os.path.join(self.folder, entry))
        ]

    @property
    def len_hint(self) -> int | None:
        """How many images the folder holds (``None`` if it cannot be listed)."""
        if self._files is not None:
            return len(self._files)
        try:
            return len(self._list())
        except OSError:
            return None

    def open(self) -> None:
        """List the folder's image files."""
        self._files = self._list()
        self._position = 0

    def next(self) -> tuple[int, Image] | Image:
        """Return the next ``(frame_index, image)`` pair (the image alone without ``with_index``)."""
        if self._files is None:
            raise RuntimeError(f"{self.describe()}: next() was called before open(); call open() first")
        if self._position >= len(self._files):
            raise StopIteration
        image = _read_image(self.describe(), self._files[self._position], self.swap_channels)
        self._position += 1
        return (self._position, image) if self.with_index else image

    def close(self) -> None:
        """Forget the listing."""
        self._files = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_files"] = None
        return state


class ImageProducer(ProducerNode):
    """Emit one image file's image (the array alone, as in videoflow), then stop.

    The image is read by ``open()``: ``FileNotFoundError`` or ``OSError`` naming the
    node when it is missing or OpenCV cannot decode it.  BGR unless
    ``swap_channels=True``.
    """

    def __init__(
        self, image_path: str | os.PathLike[str], *, swap_channels: bool = False, name: str | None = None
    ) -> None:
        super().__init__(name=name)
        owner = self.describe()
        self.image_path = check_path(owner, "image_path", image_path)
        self.swap_channels = check_bool(owner, "swap_channels", swap_channels)
        self._image: Image | None = None
        self._opened = False

    @property
    def len_hint(self) -> int:
        """Always 1."""
        return 1

    def open(self) -> None:
        """Read the image."""
        self._image = _read_image(self.describe(), self.image_path, self.swap_channels)
        self._opened = True

    def next(self) -> Image:
        """Return the image the first time; raise ``StopIteration`` after."""
        if not self._opened:
            raise RuntimeError(f"{self.describe()}: next() was called before open(); call open() first")
        image, self._image = self._image, None
        if image is None:
            raise StopIteration
        return image

    def close(self) -> None:
        """Drop the image if it was not emitted."""
        self._image = None
        self._opened = False

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_image"] = None
        state["_opened"] = False
        return state
