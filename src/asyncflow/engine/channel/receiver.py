"""``Receiver``: rows in from the links of the previous stage, in order, until ``STOP_FLOW``."""

from __future__ import annotations

import asyncio
from typing import Any

from ...core.constants import STOP_FLOW
from ...core.options import FlowOptions
from ..shm import SlotReader, load_frozen
from .blocks import Block, Chunk, Unreadable
from .link import Link, Waiter

__all__ = ["EMPTY", "Receiver"]


EMPTY: Any = object()


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
        self._waiter = Waiter()
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

    def _taken(self, link: Link, chunk: Chunk, k: int) -> None:
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

    def _drop_rest(self, link: Link, chunk: Chunk) -> int:
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
        if kind is Unreadable:
            raise row.error
        return row

    def recv_nowait(self) -> Any:
        """The next row, ``STOP_FLOW`` at the end, or ``EMPTY`` if nothing is ready."""
        if self._done:
            return STOP_FLOW
        links = self._links
        if self._positional:
            link = links[self._pos % len(links)]
            if link.queued:
                self._pos += self._step
                return self._take(link)
            if not (link.stopped or link.eof):
                return EMPTY
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
        return EMPTY

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
            if item is EMPTY:
                break
            if item is STOP_FLOW:
                if not rows:
                    return None
                break
            rows.append(item)
        return Block.fromrows_of(rows, not self._unsafe_taken, -1, self._took_born, self._took_newest)

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
        chunks: list[Chunk] = []
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
        return Block.fromrows_of(rows, chunk.safe, chunk.nbytes * k // chunk.n, chunk.born, chunk.newest)

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
            if item is not EMPTY:
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
