"""``Sender``: rows out to the links of the next stage, with credit, batching and REALTIME's leaky queue."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from ...core.options import FlowOptions
from .. import wire
from ..shm import SlotPool, dump_frozen
from .blocks import PICKLED, Block, Frozen
from .link import BrokenChannelError, Link, Waiter

__all__ = ["Sender"]


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
        self._waiter = Waiter()
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
            if kind == PICKLED:
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
        batch = self._open_batch(0, PICKLED)
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
