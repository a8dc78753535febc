"""The producer's loop: call ``next()`` (or ``next_batch``) a chunk at a time, fill blocks, send them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import CoroutineType
from typing import Any

from ...core.constants import REALTIME
from ...core.graph import ABSENT
from ...core.node import ProducerNode, batch_method
from ..channel import Block
from .common import (
    _NODE_ERRORS,
    _SAFE,
    _Failed,
)
from .rows import BlockTask

__all__ = ["ProducerLoops"]


class ProducerLoops(BlockTask):
    """A producer task's loops (``next`` and ``next_batch``)."""

    # -- producers ------------------------------------------------------------
    async def _produce(self, node: ProducerNode) -> None:
        limit = self.spec.options.batch_size
        in_layout = self.spec.stage.in_layout
        blank = Block(tuple([ABSENT] * limit for _ in in_layout), limit, 0, True, not in_layout)
        next_batch: Callable[[int], Any] | None = batch_method(node, "next")
        self._producing = True
        self._produce_task = asyncio.current_task()
        await self.go.wait()
        own_open = True
        upstream_open = self.receiver is not None
        interval = self.spec.options.flush_interval
        realtime = self.spec.flow_type == REALTIME
        yielded = time.perf_counter()
        while own_open or upstream_open:
            if self.stop_requested:
                own_open = False
            if upstream_open:
                taken = await self._next_block(limit)
                if taken is None:
                    upstream_open = False
                    continue
                if not taken.n:
                    continue
                block = taken
            elif not own_open:
                break
            else:
                block = blank
            if next_batch is not None:
                own_open = await self._produce_batches(next_batch, block, own_open, block is not blank)
            else:
                own_open = await self._produce_block(node.next, block, own_open, block is not blank)
            now = time.perf_counter()
            if now - yielded >= interval or realtime:
                # REALTIME: always, so that a node that became free (its credit) gets
                # the item just made before the source's next() (which may block) runs.
                # Let control messages (stop) and credit in; not after every block:
                # each turn of the loop polls the sockets, a system call.
                await asyncio.sleep(0)
                yielded = now

    async def _produce_block(self, method: Callable[[], Any], block: Block, own_open: bool, upstream: bool) -> bool:
        """Add the producer's values to ``block``'s rows (or make rows); whether it is still open."""
        self._start_block(block)
        values = self._values
        append = values.append
        safe, settle, rowwise = _SAFE, self._settle, self._rowwise
        interval = self.spec.options.flush_interval
        perf = time.perf_counter
        n = block.n
        pos = 0
        self._batch_started = perf()
        while pos < n:
            if own_open and self.stop_requested:
                own_open = False  # stop() arrived: emit nothing more
            if not own_open:
                if not upstream:
                    break
                # Upstream rows go on without a value of ours (zip semantics).
                self._absent = True
                for _ in range(n - pos):
                    append(await settle(ABSENT) if rowwise else ABSENT)
                break
            end = min(n, pos + self._chunk)
            started = perf()
            try:
                for _ in range(end - pos):
                    value = method()
                    if rowwise or type(value) not in safe:
                        value = await settle(value)
                    append(value)
            except _Failed:
                raise
            except asyncio.CancelledError:
                if not self.stop_requested:
                    raise
                own_open = False  # stopped while next() was waiting
            except _NODE_ERRORS as exc:
                if self._next_failed(exc):
                    await self._emit_quietly()
                    raise _Failed from exc
                own_open = False
            now = perf()
            done = self._out_start + len(values) - pos
            pos += done
            self._timed(started, now, done, done)
            if now - self._batch_started >= interval and self.sender is not None:
                await self._emit(flush=True)
                if not upstream:
                    # A slow source: give the loop a turn so that stop() is seen
                    # before the next item, not a whole batch later.
                    await asyncio.sleep(0)
                self._batch_started = perf()
        await self._emit()
        return own_open

    async def _produce_batches(
        self, next_batch: Callable[[int], Any], block: Block, own_open: bool, upstream: bool
    ) -> bool:
        """``_produce_block`` for a producer with ``next_batch``: one call without upstream rows."""
        self._start_block(block)
        values = self._values
        n = block.n
        while True:
            done = self._out_start + len(values)
            if done >= n:
                break
            if own_open and self.stop_requested:
                own_open = False
            if not own_open:
                if upstream:
                    self._absent = True
                    await self._keep_batch([ABSENT] * (n - done))
                break
            started = time.perf_counter()
            try:
                got = next_batch(n - done)
                if type(got) is CoroutineType:
                    self._in_next = True
                    try:
                        got = await got
                    finally:
                        self._in_next = False
                if type(got) is not list:
                    got = list(got)  # sent (pickled or copied) before next_batch runs again
                if not got:
                    raise StopIteration
                if len(got) > n - done:
                    raise ValueError(f"next_batch({n - done}) returned {len(got)} items")
            except asyncio.CancelledError:
                if not self.stop_requested:
                    raise
                own_open = False
                continue
            except _NODE_ERRORS as exc:
                if self._next_failed(exc):
                    await self._emit_quietly()
                    raise _Failed from exc
                own_open = False
                continue
            self._timed(started, time.perf_counter(), len(got), len(got))
            if self.sender is None:
                self._out_start += len(got)
            elif not self._values and len(got) == n - done:
                await self._emit_batch(got)  # the common case: the block's rows, all at once
            else:
                await self._keep_batch(got)
            if not upstream:
                break  # a block of what the source had: do not wait for more
        if self._values:
            await self._emit()
        return own_open

    def _next_failed(self, exc: BaseException) -> bool:
        """Whether an exception from ``next()`` is a failure (``False``: the producer ended)."""
        if isinstance(exc, (StopIteration, StopAsyncIteration)):
            return False
        # ``raise StopIteration`` inside a coroutine reaches us as a RuntimeError.
        if isinstance(exc, RuntimeError) and isinstance(exc.__cause__, (StopIteration, StopAsyncIteration)):
            return False
        self.report("next", exc)
        return True
