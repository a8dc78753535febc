"""Async channels between processes: socket pairs driven by the event loop.

A ``Link`` is one end of a socket pair.  A ``Sender`` writes rows to one or more
links (round-robin when the next stage runs several tasks) and a ``Receiver``
reads them back (restoring the order of several upstream tasks, or taking whatever
arrives first when order does not matter).  Rows travel in micro-batches that are
written when full, when the sending task yields to its event loop, or when the
first row in them has waited ``flush_interval``.

Flow control is by credit: the receiver returns a ``CREDIT`` frame for what its
node has taken, and a sender keeps at most ``queue_size`` items (and about
``max_bytes_in_flight`` bytes) unacknowledged per link.  In ``BATCH`` a sender then
waits; in ``REALTIME`` it drops its oldest unsent row and counts the drop.

``STOP_FLOW`` is a frame of its own, written behind the last row.  A link that
ends without it (the peer process died) ends the stream too, and says so in
``Receiver.broken`` / ``BrokenChannelError``.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from ..core.constants import STOP_FLOW
from . import wire

__all__ = ["BrokenChannelError", "Link", "Receiver", "Sender", "connect"]


class BrokenChannelError(Exception):
    """Raised when a row is sent on a link whose peer has gone away."""


class Link(asyncio.Protocol):
    """One end of a socket pair: parses incoming frames, writes outgoing ones."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.Transport | None = None
        self._parser = wire.FrameParser(self._on_frame)
        self.rows: deque[memoryview] = deque()
        self.messages: deque[Any] = deque()
        self.stopped = False  # STOP_FLOW received
        self.eof = False  # connection gone
        self.on_event: Callable[[], None] | None = None
        # sender side: what the peer has not acknowledged yet
        self.unacked_items = 0
        self.unacked_bytes = 0
        # receiver side: what our node took and we have not acknowledged yet
        self.taken_items = 0
        self.taken_bytes = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- protocol callbacks -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
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
        if kind == wire.DATA:
            self.rows.extend(wire.split_rows(body))
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

    def acknowledge(self) -> None:
        """Tell the sender what our node has taken since the last acknowledgement."""
        if self.taken_items or self.taken_bytes:
            if not self.eof and self.transport is not None and not self.transport.is_closing():
                self.transport.write(
                    wire.frame(wire.CREDIT, wire.CREDIT_BODY.pack(self.taken_items, self.taken_bytes))
                )
            self.taken_items = self.taken_bytes = 0

    def close(self) -> None:
        """Close our end now (idempotent); buffered writes are still flushed."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

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
        so the side that sent its last frame waits for the side that read it.
        """
        if self.transport is None:
            return
        if not await self.wait_closed(timeout):
            self.transport.abort()


async def connect(sock: socket.socket, name: str) -> Link:
    """Wrap an inherited socket in a ``Link`` on the running loop."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    _, link = await loop.connect_accepted_socket(lambda: Link(name), sock=sock)
    return link


class _Waiter:
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


class Sender:
    """Sends rows to the links of the next stage, in order, with credit and batching.

    Row ``k`` (counting from ``first`` in steps of ``step``) goes to link
    ``k % len(links)``; a task that is worker ``i`` of ``M`` uses ``first=i, step=M``
    so that the next stage can restore the order positionally.
    """

    def __init__(
        self,
        links: list[Link],
        *,
        queue_size: int,
        batch_size: int,
        flush_interval: float,
        max_bytes: int,
        realtime: bool = False,
        first: int = 0,
        step: int = 1,
    ) -> None:
        self._links = links
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_bytes = max_bytes
        self._realtime = realtime
        self._pos = first
        self._step = step
        self._batches: list[list[bytes]] = [[] for _ in links]
        self._started = [0.0] * len(links)
        self._pending: deque[bytes] = deque()  # REALTIME: rows not yet given a link
        self._waiter = _Waiter()
        self._loop = asyncio.get_running_loop()
        self._flush_scheduled = False
        self.dropped = 0
        self.sent = 0
        for link in links:
            link.on_event = self._on_event

    @property
    def links(self) -> list[Link]:
        return self._links

    def _on_event(self) -> None:
        if self._pending:
            self._pump()
        self._waiter.wake()

    def _has_credit(self, link: Link) -> bool:
        if link.unacked_items >= self._queue_size:
            return False
        return link.unacked_items == 0 or link.unacked_bytes < self._max_bytes

    def _target(self) -> int:
        return self._pos % len(self._links)

    def _assign(self, index: int, data: bytes) -> None:
        link = self._links[index]
        batch = self._batches[index]
        if not batch:
            self._started[index] = self._loop.time()
        batch.append(data)
        link.unacked_items += 1
        link.unacked_bytes += len(data)
        self._pos += self._step
        self.sent += 1
        if len(batch) >= self._batch_size or self._loop.time() - self._started[index] >= self._flush_interval:
            self._write(index)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_soon)

    def _write(self, index: int) -> None:
        batch = self._batches[index]
        if not batch:
            return
        self._batches[index] = []
        size = sum(len(b) for b in batch) + 8 * len(batch)
        parts: list[bytes] = [wire.HEADER.pack(size, wire.DATA)]
        pack = wire.ROW_LEN.pack
        for data in batch:
            parts.append(pack(len(data)))
            parts.append(data)
        link = self._links[index]
        if size < 65536:
            link.write(b"".join(parts))
        else:
            link.write_parts(parts)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        try:
            self.flush()
        except BrokenChannelError:
            pass  # reported by the next send()

    def flush(self) -> None:
        """Write every partly filled batch now."""
        for index in range(len(self._links)):
            self._write(index)

    def _pump(self) -> None:
        """REALTIME: hand unsent rows to links that have credit."""
        pending = self._pending
        while pending:
            index = self._target()
            if self._links[index].eof:
                raise BrokenChannelError(f"link {self._links[index].name} is closed")
            if not self._has_credit(self._links[index]):
                return
            self._assign(index, pending.popleft())

    async def send(self, row: Any) -> None:
        """Send one row: in BATCH wait for room, in REALTIME drop the oldest unsent row if full."""
        data = wire.dump_row(row)
        if self._realtime:
            self._pending.append(data)
            if len(self._pending) > self._queue_size:
                self._pending.popleft()
                self.dropped += 1
            self._pump()
            return
        index = self._target()
        link = self._links[index]
        while not self._has_credit(link):
            if link.eof:
                raise BrokenChannelError(f"link {link.name} is closed")
            self._write(index)
            await self._waiter.wait()
        if link.eof:
            raise BrokenChannelError(f"link {link.name} is closed")
        self._assign(index, data)

    async def send_stop(self) -> None:
        """Flush everything (waiting for room for unsent REALTIME rows), then write STOP_FLOW."""
        while self._pending:
            self.flush()
            if any(link.eof for link in self._links):
                self._pending.clear()
                break
            self._pump()
            if self._pending:
                await self._waiter.wait()
        stop = wire.frame(wire.STOP)
        for index, link in enumerate(self._links):
            try:
                self._write(index)
                link.write(stop)
            except BrokenChannelError:
                pass


_EMPTY: Any = object()


class Receiver:
    """Receives rows from the links of the previous stage; ``STOP_FLOW`` ends the stream.

    With ``positional=True`` row ``k`` (counting from ``first`` in steps of ``step``)
    is taken from link ``k % len(links)``, which restores the order in which the
    previous stage received its rows.  Otherwise rows are taken as they arrive.
    """

    def __init__(
        self, links: list[Link], *, queue_size: int, positional: bool = True, first: int = 0, step: int = 1
    ) -> None:
        self._links = links
        self._positional = positional and len(links) > 1
        self._pos = first
        self._step = step
        self._rr = 0
        self._ack_every = max(1, queue_size // 4)
        self._waiter = _Waiter()
        self._ack_scheduled = False
        self._loop = asyncio.get_running_loop()
        self._done = False
        for link in links:
            link.on_event = self._waiter.wake

    @property
    def links(self) -> list[Link]:
        return self._links

    @property
    def broken(self) -> list[str]:
        """Names of links that ended without ``STOP_FLOW`` (their sender died)."""
        return [link.name for link in self._links if link.eof and not link.stopped and not link.rows]

    def _take(self, link: Link) -> Any:
        data = link.rows.popleft()
        link.taken_items += 1
        link.taken_bytes += len(data)
        if link.taken_items >= self._ack_every:
            link.acknowledge()
        elif not link.rows and not self._ack_scheduled:
            self._ack_scheduled = True
            self._loop.call_soon(self._ack_all)
        return wire.load(data)

    def _ack_all(self) -> None:
        self._ack_scheduled = False
        for link in self._links:
            link.acknowledge()

    def recv_nowait(self) -> Any:
        """The next row, ``STOP_FLOW`` at the end, or ``_EMPTY`` if nothing is ready."""
        if self._done:
            return STOP_FLOW
        links = self._links
        if self._positional:
            link = links[self._pos % len(links)]
            if link.rows:
                self._pos += self._step
                return self._take(link)
            if not (link.stopped or link.eof):
                return _EMPTY
            self._positional = False  # the ordered stream has ended: drain the rest
        n = len(links)
        for i in range(n):
            link = links[(self._rr + i) % n]
            if link.rows:
                self._rr = (self._rr + i + 1) % n
                return self._take(link)
        if all(link.stopped or link.eof for link in links):
            self._done = True
            for link in links:
                link.close()  # everything is read: let the sender go
            return STOP_FLOW
        return _EMPTY

    async def recv(self) -> Any:
        """The next row, or ``STOP_FLOW`` once every upstream link has ended."""
        while True:
            item = self.recv_nowait()
            if item is not _EMPTY:
                return item
            await self._waiter.wait()

    def __aiter__(self) -> Receiver:
        return self

    async def __anext__(self) -> Any:
        item = await self.recv()
        if item is STOP_FLOW:
            raise StopAsyncIteration
        return item
