"""``PreviewConsumer``: the newest frame of a video stream, JPEG-encoded in its own process, for the web view.

::

    camera = SyntheticCamera(fps=30)
    annotated = BoundingBoxAnnotator()(...)
    preview = PreviewConsumer(max_fps=10)(annotated)
    flow = Flow([camera], [writer, preview])
    async with WebView(flow, port=8000) as view:     # asyncflow.monitor.WebView shows it live
        await view.run_until(flow.run())

The JPEG encoding happens here, in the node's own process, never in the host's
event loop.  The node never holds the flow back: ``consume()`` only keeps the
newest frame and returns.  A small coroutine of the node's process encodes the
newest frame and hands it to the web view, at most ``max_fps`` times a second;
while a hand-over waits (the view reads slowly), newer frames replace the one
kept, and the frames in between are never encoded.  At ``close()`` the newest
frame, if it was not handed over yet, is (waiting at most a second), so a viewer
sees the stream's last frame.

**How a frame reaches the view.**  A ``WebView`` created for the flow (before
``flow.run()``: the node is copied into its process when the run starts) gives
each ``PreviewConsumer`` of it the address of a private Unix socket it listens on
(in a folder only this user can enter); the node connects to it from its process
and writes each preview as one message (a small JSON header, then the JPEG
bytes).  Not the engine's host link, as ``ResultsConsumer`` uses: that link holds
the flow back until a reader comes, so a preview nobody watches would keep the
flow from ending; this channel only ever loses frames.  With no view (or a view
that is gone), the node encodes nothing and only counts the frames.

Items are ``(frame_index, frame)`` pairs, as the video readers emit them, or plain
frames: BGR ``uint8`` arrays ``(height, width[, channels])`` (``swap_channels=True``
takes RGB; 4 channels lose their alpha).  Anything else raises ``TypeError`` naming
the node (``on_error="skip"`` drops it instead).  Needs the ``video`` extra
(OpenCV, numpy) in the node's process; importing this module imports neither.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import numbers
import struct
import time
from typing import Any, NamedTuple

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import ConsumerNode, OnError

__all__ = ["HEADER", "PreviewConsumer", "PreviewFrame", "read_preview"]

log = logging.getLogger("asyncflow.consumers.preview")

#: How long ``close()`` waits to hand the last frame to the view.
LAST_FRAME_TIMEOUT = 1.0

#: Seconds between two attempts to reach a view that did not answer.
RETRY_INTERVAL = 1.0

#: A message's first bytes: the JSON header's length, then the JPEG's (big-endian).
HEADER = struct.Struct(">II")

_MAX_HEADER = 1 << 16
_MAX_JPEG = 1 << 28


class PreviewFrame(NamedTuple):
    """One encoded preview, as the web view receives it from a ``PreviewConsumer``."""

    node: str  # the PreviewConsumer's name
    frame_index: int | None  # from a ``(frame_index, frame)`` pair; None for a plain frame
    width: int  # the JPEG's size in pixels (the frame's, unless ``max_width`` scaled it down)
    height: int
    jpeg: bytes
    encoded_at: float  # ``time.time()`` when it was encoded
    received: int  # frames the node had received by then (the others were not encoded)

    def message(self) -> bytes:
        """The frame as one message on the view's socket."""
        header = json.dumps(
            {
                "node": self.node,
                "frame_index": self.frame_index,
                "width": self.width,
                "height": self.height,
                "encoded_at": self.encoded_at,
                "received": self.received,
            }
        ).encode()
        return HEADER.pack(len(header), len(self.jpeg)) + header + self.jpeg


async def read_preview(reader: asyncio.StreamReader) -> PreviewFrame | None:
    """The next message a ``PreviewConsumer`` wrote (``None`` at the end of the stream); ``ValueError`` if malformed."""
    try:
        head = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError:
        return None
    header_size, jpeg_size = HEADER.unpack(head)
    if header_size > _MAX_HEADER or jpeg_size > _MAX_JPEG:
        raise ValueError(f"a preview message announces {header_size} + {jpeg_size} bytes: not a preview")
    header = json.loads(await reader.readexactly(header_size))
    jpeg = await reader.readexactly(jpeg_size)
    index = header.get("frame_index")
    return PreviewFrame(
        str(header["node"]),
        None if index is None else int(index),
        int(header["width"]),
        int(header["height"]),
        jpeg,
        float(header["encoded_at"]),
        int(header["received"]),
    )


class PreviewConsumer(ConsumerNode):
    """Keep the newest frame, JPEG-encode it at most ``max_fps`` times a second, hand it to the web view.

    - ``max_fps``: encodings per second at most (> 0); the frames in between are
      not encoded, only counted.
    - ``quality``: JPEG quality, 1-100.
    - ``max_width``: frames wider than this are scaled down (aspect kept) before
      encoding; ``None`` (the default) keeps the frame's size.
    - ``swap_channels``: the frames are RGB (OpenCV's, and the readers', are BGR).

    ``frames_received`` and ``frames_sent`` count the current run's frames (in the
    node's process).  ``viewer`` is the address of the ``WebView`` it hands frames to
    (set by the view; ``None``: no view, nothing is encoded).
    """

    #: The view's socket (a path), set by ``WebView`` before the run.
    viewer: str | None = None
    # In the node's process, while it runs:
    _pump: asyncio.Task[None] | None = None
    _wake: asyncio.Event | None = None
    _newest: tuple[int | None, Any] | None = None
    _writer: asyncio.StreamWriter | None = None
    _cv2: Any = None
    _next_at = 0.0
    _retry_at = 0.0

    def __init__(
        self,
        max_fps: float = 10.0,
        quality: int = 80,
        max_width: int | None = None,
        swap_channels: bool = False,
        *,
        name: str | None = None,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(name=name, on_error=on_error)
        owner = self.describe()
        if (
            isinstance(max_fps, bool)
            or not isinstance(max_fps, numbers.Real)
            or not math.isfinite(max_fps)
            or max_fps <= 0
        ):
            raise NodeConfigError(f"{owner}: max_fps must be a number > 0, got {max_fps!r}")
        if isinstance(quality, bool) or not isinstance(quality, numbers.Integral) or not 1 <= quality <= 100:
            raise NodeConfigError(f"{owner}: quality must be an int from 1 to 100, got {quality!r}")
        if max_width is not None and (
            isinstance(max_width, bool) or not isinstance(max_width, numbers.Integral) or max_width < 16
        ):
            raise NodeConfigError(f"{owner}: max_width must be an int >= 16 or None, got {max_width!r}")
        if not isinstance(swap_channels, bool):
            raise NodeConfigError(f"{owner}: swap_channels must be True or False, got {swap_channels!r}")
        self.max_fps: float = float(max_fps)
        self.quality: int = int(quality)
        self.max_width: int | None = None if max_width is None else int(max_width)
        self.swap_channels: bool = swap_channels
        self.frames_received: int = 0
        self.frames_sent: int = 0

    # -- in the node's process ------------------------------------------------------
    async def open(self) -> None:
        """Import OpenCV and, when a view waits for frames, start the coroutine that encodes and hands them over."""
        self.frames_received = self.frames_sent = 0
        self._newest = None
        self._next_at = self._retry_at = 0.0
        if self.viewer is None:
            return  # nobody to show frames to: count them only
        try:
            import cv2
        except ModuleNotFoundError as exc:
            hint = "install it with pip install 'asyncflow[video]'"
            raise ImportError(f"{self.describe()} needs OpenCV: {hint}") from exc
        self._cv2 = cv2
        self._wake = asyncio.Event()
        self._pump = asyncio.get_running_loop().create_task(self._hand_over(), name=f"{self.name}-preview")

    def consume(self, item: Any) -> None:
        """Keep the item's frame as the newest and return (the encoding and hand-over happen aside)."""
        index, frame = self._split(item)
        self.frames_received += 1
        if self._wake is not None:
            self._newest = (index, frame)
            self._wake.set()

    async def close(self) -> None:
        """Stop handing frames over; hand over the newest if it was not yet (waiting at most a second)."""
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            try:
                await pump
            except asyncio.CancelledError:
                pass
        newest, self._newest = self._newest, None
        try:
            if newest is not None:
                preview = self._encode_or_log(*newest)
                if preview is not None:
                    await asyncio.wait_for(self._send(preview), LAST_FRAME_TIMEOUT)
        except (OSError, TimeoutError):
            log.debug("%s: the last preview could not be handed over", self.describe(), exc_info=True)
        finally:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()
            self._wake = None

    async def _hand_over(self) -> None:
        wake = self._wake
        assert wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await wake.wait()
            wake.clear()
            delay = max(self._next_at, self._retry_at) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # at most max_fps encodings a second; newer frames replace the kept one
            newest, self._newest = self._newest, None
            if newest is None:
                continue
            self._next_at = loop.time() + 1.0 / self.max_fps
            preview = self._encode_or_log(*newest)
            if preview is None:
                continue
            try:
                await self._send(preview)  # may wait for the view: frames coming meanwhile replace the newest
            except OSError:
                # The view is not there (yet, or any more): drop this frame, try again in a while.
                self._retry_at = loop.time() + RETRY_INTERVAL
                writer, self._writer = self._writer, None
                if writer is not None:
                    writer.close()

    async def _send(self, preview: PreviewFrame) -> None:
        if self._writer is None:
            if self.viewer is None:
                return
            _, self._writer = await asyncio.open_unix_connection(self.viewer)
        self._writer.write(preview.message())
        self.frames_sent += 1
        await self._writer.drain()

    def _split(self, item: Any) -> tuple[int | None, Any]:
        """``(frame_index, frame)`` or a plain frame: the index (or None) and the checked frame."""
        index: int | None = None
        frame = item
        if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], numbers.Integral):
            index, frame = int(item[0]), item[1]
        shape = getattr(frame, "shape", None)
        dtype = getattr(frame, "dtype", None)
        if (
            not isinstance(shape, tuple)
            or dtype is None
            or not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4)))
            or not all(shape)
        ):
            described = f"an array of shape {shape}" if isinstance(shape, tuple) else type(frame).__name__
            raise TypeError(
                f"{self.describe()}: items must be frames (arrays of shape (height, width[, channels])) or "
                f"(frame_index, frame) pairs, got {described}"
            )
        if str(dtype) != "uint8":
            raise TypeError(f"{self.describe()}: frames must be uint8 arrays (BGR, as OpenCV's), got dtype {dtype}")
        return index, frame

    def _encode_or_log(self, index: int | None, frame: Any) -> PreviewFrame | None:
        try:
            return self.encode(index, frame)
        except Exception:
            log.warning("%s: could not encode a preview frame", self.describe(), exc_info=True)
            return None

    def encode(self, index: int | None, frame: Any) -> PreviewFrame:
        """``frame`` as a JPEG ``PreviewFrame`` (scaled down to ``max_width``, alpha dropped, BGR)."""
        cv2 = self._cv2
        if cv2 is None:
            import cv2

            self._cv2 = cv2
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[:, :, 0]
        elif frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGBA2RGB if self.swap_channels else cv2.COLOR_BGRA2BGR)
        if self.swap_channels and frame.ndim == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        height, width = frame.shape[:2]
        if self.max_width is not None and width > self.max_width:
            height = max(1, round(height * self.max_width / width))
            width = self.max_width
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise ValueError(f"OpenCV could not encode a {width}x{height} frame as JPEG")
        return PreviewFrame(
            self.name, index, int(width), int(height), data.tobytes(), time.time(), self.frames_received
        )

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        for key in ("_pump", "_wake", "_newest", "_writer", "_cv2", "_next_at", "_retry_at"):
            state.pop(key, None)
        return state
