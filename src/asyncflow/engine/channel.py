"""Async channels between processes, driven by the event loop.

A ``Link`` is one end of a channel: a pair of pipes between two tasks
(``pipes.PipeEnd``), a socket pair between a task and the parent.  A ``Sender``
writes rows to one or more links (round-robin when the next stage runs several
tasks) and a ``Receiver`` reads them back (restoring the order of several
upstream tasks, or taking whatever arrives first when order does not matter).
Rows travel in micro-batches that are written when full, when the sending task
yields to its event loop, or when the first row in them has waited
``flush_interval``.

Flow control is by credit: the receiver returns a ``CREDIT`` frame for what its
node has taken, and a sender keeps at most ``queue_size`` items (and about
``max_bytes_in_flight`` bytes) unacknowledged per link.  In ``BATCH`` a sender then
waits.  In ``REALTIME`` a sender is a leaky queue: it keeps at most ``queue_size``
unsent rows, dropping the oldest for a newer one (charged to the receiving node
as ``"full"``), hands a row to any link that has credit (a free worker of an
``nb_tasks`` stage takes the newest row, not the next in a rotation), and the
receiver acknowledges a row only when its node asks for the next one, so what a
node gets when it becomes free is the newest row, not one that waited while it
worked.  A receiver reading the workers of an ordered ``nb_tasks`` stage in
``REALTIME`` drops a row born before one it has already passed on (``"order"``):
output keeps capture order.

``STOP_FLOW`` is a frame of its own, written behind the last row.  A link that
ends without it (the peer process died) ends the stream too, and says so in
``Receiver.broken`` / ``BrokenChannelError``.
"""

from __future__ import annotations

import array
import asyncio
import os
import socket
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

from ..core.constants import STOP_FLOW
from ..core.options import FlowOptions
from . import wire
from .pipes import PipeEnd
from .shm import SlotPool, SlotReader, dump_frozen, load_frozen

__all__ = ["Block", "BrokenChannelError", "Link", "Receiver", "Sender", "connect"]


class BrokenChannelError(Exception):
    """Raised when a row is sent on a link whose peer has gone away."""


class _Unreadable:
    """Stands in for rows that could not be unpickled; taking it raises the error."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


_PICKLED = -wire.COLS  # a sender's batch of COLS bodies pickled by the task


def _rows(cols: Sequence[Sequence[Any]], n: int) -> list[tuple[Any, ...]]:
    """``n`` rows as tuples, from their columns (``n`` empty rows when there are none)."""
    return list(zip(*cols, strict=True)) if cols else [()] * n


class Block:
    """``n`` rows as columns: ``cols[j][k]`` is value ``j`` of row ``k``.

    What a task takes from its receiver and hands to its sender.  ``safe``: every
    value is known to be immutable (an int, a float, a string, a tuple of
    them...), so the rows can be pickled whenever the batch is written, all at
    once (``False`` means "maybe not": rows from ``DATA`` frames, and blocks a
    batch method returned, which were pickled without looking at each value).  ``nbytes``
    is an estimate of their size, for batching.  ``complete``: no value is
    ``ABSENT`` (known without looking; ``False`` means "maybe").
    """

    __slots__ = ("born", "cols", "complete", "n", "nbytes", "newest", "safe")

    def __init__(
        self,
        cols: tuple[Sequence[Any], ...],
        n: int,
        nbytes: int,
        safe: bool,
        complete: bool = False,
        born: float = 0.0,
        newest: float = 0.0,
    ) -> None:
        self.cols = cols
        self.n = n
        self.nbytes = nbytes
        self.safe = safe
        self.complete = complete
        self.born = born  # when the oldest row was born (``wire``; 0.0: unknown)
        self.newest = newest  # when the youngest row was born

    @classmethod
    def from_rows(
        cls, rows: list[Any], safe: bool, nbytes: int = -1, born: float = 0.0, newest: float = 0.0
    ) -> Block:
        """The block of these row tuples."""
        if nbytes < 0:
            nbytes = 16 * len(rows) * (len(rows[0]) + 1) if rows else 0
        return cls(tuple(zip(*rows, strict=True)), len(rows), nbytes, safe, False, born, newest)

    def rows(self) -> list[tuple[Any, ...]]:
        """The rows as tuples."""
        return _rows(self.cols, self.n)

    def part(self, start: int, end: int) -> Block:
        """Rows ``start`` .. ``end - 1``."""
        if start == 0 and end == self.n:
            return self
        n = end - start
        return Block(
            tuple(col[start:end] for col in self.cols),
            n,
            self.nbytes * n // max(self.n, 1),
            self.safe,
            self.complete,
            self.born,
            self.newest,
        )

    def project(self, columns: tuple[int, ...]) -> Block:
        """The same rows with only ``columns`` (for one branch after a split)."""
        return Block(
            tuple(self.cols[j] for j in columns), self.n, self.nbytes, self.safe, self.complete, self.born, self.newest
        )


class _Chunk:
    """A received frame's rows: as columns (``COLS``), or a list of rows / pickled rows."""

    __slots__ = ("born", "cols", "complete", "n", "nbytes", "newest", "pos", "rows", "safe")

    def __init__(
        self,
        cols: Any,
        rows: list[Any] | None,
        n: int,
        nbytes: int,
        safe: bool,
        complete: bool = False,
        born: float = 0.0,
        newest: float = 0.0,
    ) -> None:
        self.born = born
        self.newest = newest
        self.complete = complete  # no ABSENT in it (COLS frames say so)
        self.cols = cols
        self.rows = rows
        self.n = n
        self.nbytes = nbytes  # what flow control counts once every row is taken
        self.pos = 0  # rows taken so far
        self.safe = safe  # rows of immutable values only (ROWS, and COLS that say so)

    def row_list(self) -> list[Any]:
        if self.rows is None:
            self.rows = _rows(self.cols, self.n)
        return self.rows


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
        self.chunks: deque[_Chunk] = deque()  # received frames whose rows are not all taken
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
                    chunk = _Chunk(cols, None, n, len(body), safe, complete, born, newest)
                else:
                    born, newest, rows = wire.load(body)
                    chunk = _Chunk(None, rows, len(rows), len(body), True, False, born, newest)
            except Exception as exc:
                chunk = _Chunk(None, [_Unreadable(exc)], 1, len(body), False)
            self.chunks.append(chunk)
            self.queued += chunk.n
        elif kind == wire.DATA:
            declared, born, newest, rows = wire.split_rows(body)
            self.chunks.append(_Chunk(None, rows, len(rows), declared, False, False, born, newest))
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


class Frozen:
    """A row pickled when it was produced (it held something mutable).

    ``slots`` are the shared-memory slots its big arrays went to, and ``size`` the
    bytes it stands for (its pickle plus those arrays), which flow control counts.
    """

    __slots__ = ("data", "parts", "size", "slots")

    def __init__(self, data: bytes, slots: list[int], size: int, parts: list[Any] | None = None) -> None:
        self.data = data
        self.slots = slots
        self.size = size
        #: After a split (``tee.Tee``): the row as each branch gets it (a tuple or a ``Frozen``).
        self.parts = parts


class Sender:
    """Sends rows to the links of the next stage, in order, with credit and batching.

    Row ``k`` (counting from ``first`` in steps of ``step``) goes to link
    ``k % len(links)``; a task that is worker ``i`` of ``M`` uses ``first=i, step=M``
    so that the next stage can restore the order positionally.

    A batch holds immutable rows (sent as one ``ROWS`` pickle), blocks of them
    (one ``COLS`` pickle of columns), or rows pickled when they were produced
    (``DATA``).  It is written when full, when it holds over ``_BATCH_BYTES``, when
    a row of another kind comes, when the task goes idle, or once its first row
    has waited ``flush_interval``.
    """

    _BATCH_BYTES = 1 << 20

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
        target: str = "",
    ) -> None:
        self._links = links
        self.target = target  # the node this sender feeds: REALTIME drops are charged to it
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_bytes = max_bytes
        self._realtime = realtime
        self._pos = first
        self._step = step
        n = len(links)
        self._batches: list[list[Any]] = [[] for _ in range(n)]
        self._kinds = [wire.ROWS] * n  # what batch i holds: ROWS (rows), DATA (pickled rows), COLS (blocks)
        self._batch_items = [0] * n
        self._batch_bytes = [0] * n
        self._started = [0.0] * n
        self._born = [0.0] * n  # birth times of batch i: oldest (0.0: none known) and youngest row
        self._newest = [0.0] * n
        self._rr = 0  # REALTIME: the next link to offer a row to
        # REALTIME: rows not yet sent: (data, size, kind, slots, born, newest)
        self._pending: deque[tuple[Any, int, int, list[int], float, float]] = deque()
        self._waiter = _Waiter()
        self._loop = asyncio.get_running_loop()
        self._flush_scheduled = False
        self.dropped = 0
        self.sent = 0
        # Big arrays go through shared memory.  Flow control keeps about max_bytes of
        # them in flight; the receiving task holds as much again in the rows it has
        # taken and not yet let go of, so the pool gets twice that before it falls
        # back to pickling in-band.
        self.pool = SlotPool(2 * max_bytes + (16 << 20))
        for link in links:
            link.on_event = self._on_event
            link.on_release = self.pool.release

    @classmethod
    def for_flow(cls, links: list[Link], options: FlowOptions, **kwargs: Any) -> Sender:
        """A sender with the flow's queue, batch, flush and byte settings."""
        return cls(
            links,
            queue_size=options.queue_size,
            batch_size=options.batch_size,
            flush_interval=options.flush_interval,
            max_bytes=options.max_bytes_in_flight,
            **kwargs,
        )

    @property
    def links(self) -> list[Link]:
        return self._links

    @property
    def blocks_whole(self) -> bool:
        """Whether ``send_block`` sends columns as they are (one link, no dropping)."""
        return len(self._links) == 1 and not self._realtime

    def close(self) -> None:
        """Unlink the shared-memory slots (after the links have closed)."""
        self.pool.close()

    def _on_event(self) -> None:
        if self._pending:
            self._pump()
        self._waiter.wake()

    def _has_credit(self, link: Link) -> bool:
        if link.unacked_items >= self._queue_size:
            return False
        return link.unacked_items == 0 or link.unacked_bytes < self._max_bytes

    def _open_batch(self, index: int, kind: int) -> list[Any]:
        """The batch for link ``index``, written first if it holds another kind of row."""
        batch = self._batches[index]
        if batch and self._kinds[index] != kind:
            self._write(index)
            batch = self._batches[index]
        if not batch:
            self._started[index] = self._loop.time()
            self._kinds[index] = kind
            self._born[index] = self._newest[index] = 0.0
        return batch

    def _note_born(self, index: int, born: float, newest: float) -> None:
        """Fold a row's (or block's) birth times into batch ``index``'s."""
        if born:
            old = self._born[index]
            if not old or born < old:
                self._born[index] = born
            if newest > self._newest[index]:
                self._newest[index] = newest

    def _assign(self, index: int, entry: Any, size: int, kind: int, born: float, newest: float) -> None:
        batch = self._open_batch(index, kind)
        batch.append(entry)
        if born:
            self._note_born(index, born, newest)
        self._batch_items[index] += 1
        self._batch_bytes[index] += size
        self._links[index].unacked_items += 1
        self._pos += self._step
        self.sent += 1
        if self._batch_items[index] >= self._batch_size or self._batch_bytes[index] >= self._BATCH_BYTES:
            self._write(index)

    def _after_assign(self) -> None:
        """Write batches whose first row has waited long enough; flush the rest when idle."""
        if not any(self._batches):
            return
        now = self._loop.time()
        for index, batch in enumerate(self._batches):
            if batch and now - self._started[index] >= self._flush_interval:
                self._write(index)
        if not self._flush_scheduled and any(self._batches):
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_soon)

    def _write(self, index: int) -> None:
        batch = self._batches[index]
        if not batch:
            return
        self._batches[index] = []
        batch_bytes = self._batch_bytes[index]
        self._batch_bytes[index] = 0
        self._batch_items[index] = 0
        link = self._links[index]
        kind = self._kinds[index]
        if kind != wire.DATA:
            if kind == _PICKLED:
                # Blocks pickled when they were sent (``send_pickled``): a frame each.
                link.unacked_bytes += sum(len(b) for b in batch)
                pack = wire.HEADER.pack
                link.write(b"".join([part for b in batch for part in (pack(len(b), wire.COLS), b)]))
                return
            if kind == wire.COLS:
                complete = all(block.complete for block in batch)
                safe = all(block.safe for block in batch)
                born, newest = self._born[index], self._newest[index]
                if len(batch) == 1:
                    body = wire.dump_row((batch[0].n, batch[0].cols, complete, safe, born, newest))
                else:
                    cols: list[list[Any]] = [[] for _ in batch[0].cols]
                    for block in batch:
                        for col, part in zip(cols, block.cols, strict=True):
                            col.extend(part)
                    body = wire.dump_row((sum(block.n for block in batch), cols, complete, safe, born, newest))
            else:
                body = wire.dump_row((self._born[index], self._newest[index], batch))
            link.unacked_bytes += len(body)
            if len(body) < 65536:
                link.write(wire.HEADER.pack(len(body), kind) + body)
            else:
                link.write_parts([wire.HEADER.pack(len(body), kind), body])
            return
        size = wire.DATA_HEAD.size + sum(len(b) for b in batch) + 8 * len(batch)
        declared = max(size, batch_bytes)  # with the shared memory its rows point to
        link.unacked_bytes += declared
        pack = wire.ROW_LEN.pack
        parts: list[bytes] = [
            wire.HEADER.pack(size, wire.DATA),
            wire.DATA_HEAD.pack(declared, self._born[index], self._newest[index]),
        ]
        for data in batch:
            parts.append(pack(len(data)))
            parts.append(data)
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
        """REALTIME: hand unsent rows, oldest first, to whichever links have credit."""
        pending = self._pending
        links = self._links
        nlinks = len(links)
        while pending:
            for i in range(nlinks):
                index = (self._rr + i) % nlinks
                if links[index].eof:
                    raise BrokenChannelError(f"link {links[index].name} is closed")
                if self._has_credit(links[index]):
                    break
            else:
                break
            self._rr = (index + 1) % nlinks
            data, size, kind, _, born, newest = pending.popleft()
            self._assign(index, data, size, kind, born, newest)
        self._after_assign()

    def freeze(self, row: tuple[Any, ...]) -> Any:
        """Fix a row as it is now: itself if nothing in it can change, else its pickle.

        The task calls this as soon as a node returns, before it calls the node
        again, so a node may reuse and mutate the buffer it returned.  Big numpy
        arrays are copied into shared-memory slots instead of the pickle.
        """
        if wire.immutable_size(row) >= 0:
            return row
        data, slots, shared = dump_frozen(row, self.pool)
        return Frozen(data, slots, len(data) + shared)

    async def send(self, row: tuple[Any, ...], born: float = 0.0) -> None:
        """Send one row (see ``send_many``)."""
        await self.send_many([self.freeze(row)], born, born)

    async def send_block(self, block: Block) -> None:
        """Send a block of immutable rows (``block.safe``), in order, as ``send_many`` would.

        To several links (the next stage runs several tasks) each link gets its rows
        as a block of its own: every ``len(links)``-th row, taken by slicing columns.
        """
        if self._realtime:
            await self.send_many(block.rows(), block.born, block.newest)
            return
        nlinks = len(self._links)
        if nlinks == 1:
            await self._send_block_to(0, block)
            self._after_assign()
            return
        # Row k goes to link (pos + k * step) % nlinks: one residue of k per link when
        # step and nlinks share no factor (always, in practice: step is 1 here).
        owner = [(self._pos + r * self._step) % nlinks for r in range(nlinks)]
        if len(set(owner)) != nlinks:
            await self.send_many(block.rows(), block.born, block.newest)
            return
        pos = self._pos
        for r, index in enumerate(owner):
            count = len(range(r, block.n, nlinks))
            if count:
                part = Block(
                    tuple(col[r::nlinks] for col in block.cols),
                    count,
                    block.nbytes * count // max(block.n, 1),
                    block.safe,
                    block.complete,
                    block.born,
                    block.newest,
                )
                await self._send_block_to(index, part)
        self._pos = pos + block.n * self._step
        self._after_assign()

    async def _send_block_to(self, index: int, block: Block) -> None:
        """Queue ``block`` for link ``index``, waiting for credit as needed (``_pos`` moves by its rows)."""
        link = self._links[index]
        start, n = 0, block.n
        while start < n:
            if link.eof:
                raise BrokenChannelError(f"link {link.name} is closed")
            room = self._queue_size - link.unacked_items
            if room <= 0 or (link.unacked_items and link.unacked_bytes >= self._max_bytes):
                self._write(index)
                await self._waiter.wait()
                continue
            batch = self._open_batch(index, wire.COLS)
            take = min(room, n - start, self._batch_size - self._batch_items[index])
            part = block.part(start, start + take)
            batch.append(part)
            self._note_born(index, block.born, block.newest)
            self._batch_items[index] += take
            self._batch_bytes[index] += part.nbytes
            link.unacked_items += take
            self._pos += take * self._step
            self.sent += take
            start += take
            if self._batch_items[index] >= self._batch_size or self._batch_bytes[index] >= self._BATCH_BYTES:
                self._write(index)

    async def send_pickled(self, body: bytes, n: int) -> None:
        """Send ``n`` rows already pickled as a ``COLS`` body (``wire.dump_cols``), in order.

        Only where ``blocks_whole`` (one link, no dropping).  A block as big as a
        batch, with nothing waiting before it, is written at once as its own frame.
        """
        link = self._links[0]
        while True:
            if link.eof:
                raise BrokenChannelError(f"link {link.name} is closed")
            if link.unacked_items == 0 or (
                link.unacked_items + n <= self._queue_size and link.unacked_bytes < self._max_bytes
            ):
                break
            self._write(0)
            await self._waiter.wait()
        link.unacked_items += n
        self._pos += n * self._step
        self.sent += n
        if n >= self._batch_size and not self._batches[0]:
            link.unacked_bytes += len(body)
            link.write(wire.frame(wire.COLS, body))
            return
        batch = self._open_batch(0, _PICKLED)
        batch.append(body)
        self._batch_items[0] += n
        self._batch_bytes[0] += len(body)
        if self._batch_items[0] >= self._batch_size or self._batch_bytes[0] >= self._BATCH_BYTES:
            self._write(0)
        self._after_assign()

    async def send_many(self, entries: list[Any], born: float = 0.0, newest: float = 0.0) -> None:
        """Send frozen rows (see ``freeze``) in order; ``born`` / ``newest``: their birth times.

        In BATCH wait for room; in REALTIME drop the oldest unsent rows when full.
        """
        immutable_size = wire.immutable_size
        if self._realtime:
            pending = self._pending
            for entry in entries:
                if type(entry) is Frozen:
                    pending.append((entry.data, entry.size, wire.DATA, entry.slots, born, newest))
                else:
                    pending.append((entry, immutable_size(entry), wire.ROWS, [], born, newest))
            while len(pending) > self._queue_size:
                self.pool.release(pending.popleft()[3])
                self.dropped += 1
            self._pump()
            return
        links = self._links
        nlinks = len(links)
        queue_size = self._queue_size
        for entry in entries:
            if type(entry) is Frozen:
                data: Any = entry.data
                size = entry.size
                kind = wire.DATA
            else:
                data = entry
                size = immutable_size(entry)
                kind = wire.ROWS
            index = self._pos % nlinks
            link = links[index]
            if link.unacked_items >= queue_size or not self._has_credit(link):
                while not self._has_credit(link):
                    if link.eof:
                        raise BrokenChannelError(f"link {link.name} is closed")
                    self._write(index)
                    await self._waiter.wait()
            if link.eof:
                raise BrokenChannelError(f"link {link.name} is closed")
            self._assign(index, data, size, kind, born, newest)
        self._after_assign()

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

    ``pull`` (REALTIME): rows are acknowledged when the task asks for more, not
    when it takes them, so the sender hands over a new row only once the node is
    free (and then the newest).  ``order_of`` (REALTIME, after the workers of an
    ordered ``nb_tasks`` node): a frame born before one already passed on is
    dropped and counted in ``order_dropped`` (charged to that node).
    """

    def __init__(
        self,
        links: list[Link],
        *,
        queue_size: int,
        max_bytes: int,
        positional: bool = True,
        first: int = 0,
        step: int = 1,
        pull: bool = False,
        order_of: str | None = None,
    ) -> None:
        self._links = links
        self._pull = pull
        self.order_of = order_of
        self.order_dropped = 0
        self._passed_newest = 0.0  # order_of: the youngest birth time passed on so far
        self._took_born = 0.0  # birth times of the rows taken one by one into the current block
        self._took_newest = 0.0
        self._cut = False  # an ordered stream that ended early: what else comes is discarded
        self.discarded = 0
        self._positional = positional and len(links) > 1
        self._pos = first
        self._step = step
        self._rr = 0
        # Acknowledging half of what the sender may have unacknowledged keeps it
        # busy and can never deadlock: a sender that waits has queue_size items
        # (or max_bytes bytes) out, and once they are taken half of that is passed.
        self._ack_items = max(1, queue_size // 2)
        self._ack_bytes = max(1, max_bytes // 2)
        self._waiter = _Waiter()
        self._loop = asyncio.get_running_loop()
        self._done = False
        self._unsafe_taken = False  # a row taken by _take came from a DATA frame
        self.reader = SlotReader()
        for link in links:
            link.on_event = self._waiter.wake

    @classmethod
    def for_flow(cls, links: list[Link], options: FlowOptions, **kwargs: Any) -> Receiver:
        """A receiver with the flow's queue and byte settings."""
        return cls(links, queue_size=options.queue_size, max_bytes=options.max_bytes_in_flight, **kwargs)

    @property
    def links(self) -> list[Link]:
        return self._links

    @property
    def queued(self) -> int:
        """Rows received and not yet taken."""
        return sum(link.queued for link in self._links)

    @property
    def broken(self) -> list[str]:
        """Names of links that ended without ``STOP_FLOW`` (their sender died)."""
        return [link.name for link in self._links if link.eof and not link.stopped and not link.queued]

    def _load(self, link: Link, data: memoryview) -> Any:
        return load_frozen(data, self.reader, link.released)

    def send_releases(self) -> None:
        """Give back the slots whose arrays have been garbage-collected since the last call."""
        for link in self._links:
            if link.released:
                sids, link.released[:] = list(link.released), []
                link.send_release(sids)

    def close(self) -> None:
        """Unmap the senders' shared-memory slots (after the stream has ended)."""
        self.send_releases()
        self.reader.close()

    def _taken(self, link: Link, chunk: _Chunk, k: int) -> None:
        """Count ``k`` rows of ``link``'s first chunk as taken; acknowledge when due."""
        chunk.pos += k
        link.queued -= k
        if chunk.pos >= chunk.n:
            link.chunks.popleft()
            link.taken_bytes += chunk.nbytes
        link.taken_items += k
        if self._pull:
            return  # acknowledged when the task asks for more (``_ask``)
        if link.taken_items >= self._ack_items or link.taken_bytes >= self._ack_bytes:
            link.acknowledge()

    def _ask(self) -> None:
        """REALTIME: the node is free: let the senders send again."""
        for link in self._links:
            if link.taken_items or link.taken_bytes:
                link.acknowledge()

    def _take(self, link: Link) -> Any:
        chunk = link.chunks[0]
        row = chunk.row_list()[chunk.pos]
        if not chunk.safe:
            self._unsafe_taken = True
        born = chunk.born
        if born:
            if not self._took_born or born < self._took_born:
                self._took_born = born
            if chunk.newest > self._took_newest:
                self._took_newest = chunk.newest
        self._taken(link, chunk, 1)
        return self._thaw(link, row)

    def _discard_all(self) -> None:
        """Take and drop every row queued on every link (after a cut)."""
        for link in self._links:
            while link.chunks:
                self.discarded += self._drop_rest(link, link.chunks[0])

    def _drop_rest(self, link: Link, chunk: _Chunk) -> int:
        """Take and drop the rows of ``link``'s first chunk; how many there were."""
        k = chunk.n - chunk.pos
        if not chunk.safe:
            for row in chunk.row_list()[chunk.pos :]:
                try:
                    self._thaw(link, row)  # unpickled and let go: its shared-memory slots go back
                except Exception:
                    pass
        self._taken(link, chunk, k)
        return k

    def _out_of_order(self, link: Link) -> bool:
        """``order_of``: drop ``link``'s first frame if it was born before a row already passed on."""
        chunk = link.chunks[0]
        if not chunk.born or chunk.born > self._passed_newest:
            if chunk.newest > self._passed_newest:
                self._passed_newest = chunk.newest
            return False
        self.order_dropped += self._drop_rest(link, chunk)
        return True

    def _thaw(self, link: Link, row: Any) -> Any:
        """A row as the node may see it: unpickled if it came pickled; raises if it could not be read."""
        kind = type(row)
        if kind is memoryview:
            return self._load(link, row)
        if kind is _Unreadable:
            raise row.error
        return row

    def recv_nowait(self) -> Any:
        """The next row, ``STOP_FLOW`` at the end, or ``_EMPTY`` if nothing is ready."""
        if self._done:
            return STOP_FLOW
        links = self._links
        if self._positional:
            link = links[self._pos % len(links)]
            if link.queued:
                self._pos += self._step
                return self._take(link)
            if not (link.stopped or link.eof):
                return _EMPTY
            # The ordered stream ends here.  Rows still on other links come after a
            # gap (a worker failed or died with rows of its turn missing): passing
            # them on would deliver them out of order, so they are discarded.
            self._positional = False
            self._cut = True
        if self._cut:
            self._discard_all()
        n = len(links)
        for i in range(n):
            link = links[(self._rr + i) % n]
            if link.queued:
                if self.order_of is not None and link.chunks[0].pos == 0 and self._out_of_order(link):
                    return self.recv_nowait()
                self._rr = (self._rr + i + 1) % n
                return self._take(link)
        if all(link.stopped or link.eof for link in links):
            self._done = True
            for link in links:
                link.close()  # everything is read: let the sender go
            return STOP_FLOW
        return _EMPTY

    def take_block(self, limit: int) -> Block | None:
        """Up to ``limit`` rows that are here now (``n == 0``: none yet); ``None`` once the stream has ended."""
        self.send_releases()
        if self._pull:
            self._ask()
        if not self._positional and len(self._links) == 1:
            link = self._links[0]
            if link.queued:
                return self._take_chunk(link, limit)
            if not (link.stopped or link.eof):
                return Block((), 0, 0, True)  # nothing yet
        if self._positional and self._step == 1:
            block = self._take_interleaved(limit)
            if block is not None:
                return block
        self._unsafe_taken = False
        self._took_born = self._took_newest = 0.0
        rows: list[Any] = []
        while len(rows) < limit:
            item = self.recv_nowait()
            if item is _EMPTY:
                break
            if item is STOP_FLOW:
                if not rows:
                    return None
                break
            rows.append(item)
        return Block.from_rows(rows, not self._unsafe_taken, -1, self._took_born, self._took_newest)

    def _take_interleaved(self, limit: int) -> Block | None:
        """In order, rows from several links that each hold a block of columns, interleaved by slicing.

        Row k of the stream is on link ``(pos + k) % len(links)``: take ``m`` rows from
        each link (as many as every link's first chunk has, within ``limit``) and
        put link ``o`` places after the first one at rows ``o, o + len(links), ...``.
        ``None`` when that is not possible now (the caller takes rows one by one).
        """
        links = self._links
        nlinks = len(links)
        m = limit // nlinks
        chunks: list[_Chunk] = []
        for link in links:
            if not link.chunks:
                return None
            chunk = link.chunks[0]
            if chunk.cols is None:
                return None
            m = min(m, chunk.n - chunk.pos)
            chunks.append(chunk)
        if m <= 0:
            return None
        first = self._pos % nlinks
        order = [(first + o) % nlinks for o in range(nlinks)]
        total = m * nlinks
        width = len(chunks[0].cols)
        cols: list[list[Any]] = [[None] * total for _ in range(width)]
        nbytes = 0
        for o, index in enumerate(order):
            chunk = chunks[index]
            start = chunk.pos
            for j in range(width):
                cols[j][o::nlinks] = chunk.cols[j][start : start + m]
            nbytes += chunk.nbytes * m // max(chunk.n, 1)
        complete = all(chunk.complete for chunk in chunks)
        safe = all(chunk.safe for chunk in chunks)
        borns = [chunk.born for chunk in chunks if chunk.born]
        born = min(borns) if borns else 0.0
        newest = max(chunk.newest for chunk in chunks)
        for link, chunk in zip(links, chunks, strict=True):
            self._taken(link, chunk, m)
        self._pos += total
        return Block(tuple(cols), total, nbytes, safe, complete, born, newest)

    def _take_chunk(self, link: Link, limit: int) -> Block:
        """Rows of the first chunk of ``link``, as a block, without taking the rows apart."""
        chunk = link.chunks[0]
        start = chunk.pos
        k = min(limit, chunk.n - start)
        if chunk.cols is not None:
            block = Block(
                chunk.cols, chunk.n, chunk.nbytes, chunk.safe, chunk.complete, chunk.born, chunk.newest
            ).part(start, start + k)
            self._taken(link, chunk, k)
            return block
        assert chunk.rows is not None
        rows = chunk.rows[start : start + k]
        self._taken(link, chunk, k)
        if not chunk.safe:
            rows = [self._thaw(link, row) for row in rows]
        return Block.from_rows(rows, chunk.safe, chunk.nbytes * k // chunk.n, chunk.born, chunk.newest)

    async def wait(self) -> None:
        """Wait until something arrives on any link (or a link ends)."""
        self.send_releases()
        if self._pull:
            self._ask()
        await self._waiter.wait()

    async def recv(self) -> Any:
        """The next row, or ``STOP_FLOW`` once every upstream link has ended."""
        while True:
            item = self.recv_nowait()
            if item is not _EMPTY:
                return item
            await self.wait()

    async def drain(self) -> None:
        """Take and drop whatever upstream still sends, until every link has ended (never raises)."""
        while True:
            self._discard_all()
            if all(link.stopped or link.eof for link in self._links):
                self._done = True
                for link in self._links:
                    link.close()  # everything is read: let the sender go
                return
            await self.wait()

    def __aiter__(self) -> Receiver:
        return self

    async def __anext__(self) -> Any:
        item = await self.recv()
        if item is STOP_FLOW:
            raise StopAsyncIteration
        return item
