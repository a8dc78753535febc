"""One end of a channel (``Link``): frames in, frames out, over a pipe pair or a socket pair."""

from __future__ import annotations

import array
import asyncio
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from .. import wire
from ..pipes import PipeEnd
from .blocks import Chunk, Unreadable

__all__ = ["BrokenChannelError", "Link", "Waiter", "connect"]


class BrokenChannelError(Exception):
    """Raised when a row is sent on a link whose peer has gone away."""


class Link(asyncio.Protocol):
    """One end of a channel: parses incoming frames, writes outgoing ones.

    On a socket pair one transport does both; on a pair of pipes (``pipes.PipeEnd``,
    between tasks) ``transport`` writes and ``_reader`` reads, this object being the
    reader's protocol and ``_WriteEnd`` the writer's.
    """

    def __init__(self, name: str, piped: bool = False) -> None:
        self.name = name
        self.transport: asyncio.Transport | None = None
        self._piped = piped
        self._reader: asyncio.BaseTransport | None = None
        self._parser = wire.FrameParser(self._on_frame)
        self.chunks: deque[Chunk] = deque()  # received frames whose rows are not all taken
        self.queued = 0  # rows received and not yet taken
        self.messages: deque[Any] = deque()
        self.stopped = False  # STOP_FLOW received
        self.eof = False  # connection gone
        self.on_event: Callable[[], None] | None = None
        self.on_release: Callable[[list[int]], None] | None = None
        self.released: list[int] = []  # receiver side: slots to give back
        # sender side: what the peer has not acknowledged yet
        self.unacked_items = 0
        self.unacked_bytes = 0
        # receiver side: what our node took and we have not acknowledged yet
        self.taken_items = 0
        self.taken_bytes = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- protocol callbacks -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._piped:
            self._reader = transport
        else:
            self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if not self.closed.done():
            self.closed.set_result(None)
        self._wake()

    def _on_frame(self, kind: int, body: memoryview) -> None:
        if kind in (wire.COLS, wire.ROWS):
            try:
                if kind == wire.COLS:
                    n, cols, complete, safe, born, newest = wire.load(body)
                    chunk = Chunk(cols, None, n, len(body), safe, complete, born, newest)
                else:
                    born, newest, rows = wire.load(body)
                    chunk = Chunk(None, rows, len(rows), len(body), True, False, born, newest)
            except Exception as exc:
                chunk = Chunk(None, [Unreadable(exc)], 1, len(body), False)
            self.chunks.append(chunk)
            self.queued += chunk.n
        elif kind == wire.DATA:
            declared, born, newest, rows = wire.split_rows(body)
            self.chunks.append(Chunk(None, rows, len(rows), declared, False, False, born, newest))
            self.queued += len(rows)
        elif kind == wire.RELEASE:
            if self.on_release is not None:
                self.on_release(list(memoryview(body).cast("q")))
        elif kind == wire.CREDIT:
            items, nbytes = wire.CREDIT_BODY.unpack(body)
            self.unacked_items -= items
            self.unacked_bytes -= nbytes
        elif kind == wire.STOP:
            self.stopped = True
        elif kind == wire.MSG:
            self.messages.append(wire.load(body))
        self._wake()

    def _wake(self) -> None:
        if self.on_event is not None:
            self.on_event()

    # -- writing ------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.eof or self.transport is None or self.transport.is_closing():
            raise BrokenChannelError(f"link {self.name} is closed")
        self.transport.write(data)

    def write_parts(self, parts: list[bytes]) -> None:
        if self.eof or self.transport is None or self.transport.is_closing():
            raise BrokenChannelError(f"link {self.name} is closed")
        self.transport.writelines(parts)

    def send_message(self, message: Any) -> None:
        """Write one pickled control message (ignored if the peer is gone)."""
        if not self.eof and self.transport is not None and not self.transport.is_closing():
            self.transport.write(wire.frame(wire.MSG, wire.dump_row(message)))

    def send_release(self, sids: list[int]) -> None:
        """Give shared-memory slots back to the sender (ignored if it is gone)."""
        if not self.eof and self.transport is not None and not self.transport.is_closing():
            self.transport.write(wire.frame(wire.RELEASE, array.array("q", sids).tobytes()))

    def acknowledge(self) -> None:
        """Tell the sender what our node has taken since the last acknowledgement."""
        if self.taken_items or self.taken_bytes:
            if not self.eof and self.transport is not None and not self.transport.is_closing():
                self.transport.write(wire.frame(wire.CREDIT, wire.CREDIT_BODY.pack(self.taken_items, self.taken_bytes)))
            self.taken_items = self.taken_bytes = 0

    def close(self) -> None:
        """Close our end now (idempotent); buffered writes are still flushed."""
        for transport in (self.transport, self._reader):
            if transport is not None and not transport.is_closing():
                transport.close()

    async def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the connection is gone; ``False`` if ``timeout`` passed first."""
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
            return True
        except TimeoutError:
            return False

    async def aclose_after_peer(self, timeout: float | None = None) -> None:
        """Let the peer close first, then close.

        Closing a socket whose peer is still writing to it makes the peer's next
        write fail, and the peer's event loop then drops what it had not read yet:
        so the side that sent its last frame waits for the side that read it (pipes
        do not lose what was written, but the same order costs them nothing).
        """
        if self.transport is None:
            return
        if not await self.wait_closed(timeout):
            self.transport.abort()
            if self._reader is not None:
                self._reader.close()


class _WriteEnd(asyncio.BaseProtocol):
    """The protocol of a ``Link``'s write pipe: hands the link its transport, reports the end."""

    def __init__(self, link: Link) -> None:
        self.link = link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        # Our write end is closed, or the peer's read end went away: nothing more can
        # be sent (what the peer wrote to us is still read, up to its end).
        self.link.eof = True
        self.link._wake()


async def connect(end: socket.socket | PipeEnd, name: str) -> Link:
    """Wrap an inherited socket, or pair of pipes, in a ``Link`` on the running loop."""
    loop = asyncio.get_running_loop()
    if isinstance(end, PipeEnd):
        read_fd, write_fd = end.detach()
        link = Link(name, piped=True)
        await loop.connect_write_pipe(lambda: _WriteEnd(link), os.fdopen(write_fd, "wb", buffering=0))
        await loop.connect_read_pipe(lambda: link, os.fdopen(read_fd, "rb", buffering=0))
        return link
    end.setblocking(False)
    _, link = await loop.connect_accepted_socket(lambda: Link(name), sock=end)
    return link


class Waiter:
    """A re-armable wake-up shared by all links of one sender or receiver."""

    __slots__ = ("_future", "_loop")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._future: asyncio.Future[None] | None = None

    def wake(self) -> None:
        fut = self._future
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def wait(self) -> None:
        self._future = self._loop.create_future()
        try:
            await self._future
        finally:
            self._future = None
