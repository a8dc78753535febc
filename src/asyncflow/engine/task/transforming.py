"""The processor's and consumer's loop: take a block, call the node a chunk of rows at a time, send on."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import CoroutineType
from typing import Any

from ...core.graph import ABSENT
from ...core.node import batch_method
from ..channel import Block
from .common import (
    _NODE_ERRORS,
    _SAFE,
    _Failed,
    _private,
)
from .rows import BlockTask

__all__ = ["TransformLoops"]


class TransformLoops(BlockTask):
    """A processor or consumer task's loops (per item and ``process_batch`` / ``consume_batch``)."""

    # -- processors and consumers -------------------------------------------
    async def _transform(self, method: Callable[..., Any], on_error: str, phase: str) -> None:
        limit = self.spec.options.batch_size
        per_block: Callable[..., Any] | None = batch_method(self.node, phase)
        max_age = self._max_age
        while True:
            block = await self._next_block(limit)
            if block is None:
                break
            if not block.n:
                continue
            if block.born:
                now = time.time()
                if max_age is not None and now - block.newest > max_age:
                    self.stale += block.n  # too old to be worth the work: dropped before it
                    continue
                age = now - block.born
                self._ages.append(age)
                self.stats.aged += block.n
                if age > self.stats.age_max:
                    self.stats.age_max = age
            if per_block is not None:
                await self._transform_batch(per_block, method, block, on_error, phase)
            else:
                await self._transform_block(method, block, on_error, phase)

    def _input_columns(self, block: Block) -> list[Sequence[Any]]:
        """The node's input columns of ``block``: private copies of mutable values that are also passed on."""
        shared = self._shared_inputs
        cols = block.cols
        if not shared or block.safe:
            return [cols[s] for s in self.spec.stage.parent_slots]
        return [_private(cols[s]) if s in shared else cols[s] for s in self.spec.stage.parent_slots]

    async def _transform_block(self, method: Callable[..., Any], block: Block, on_error: str, phase: str) -> None:
        self._start_block(block)
        inputs = self._input_columns(block)
        args: Sequence[Any]
        if len(inputs) == 1:
            args, spread = inputs[0], False
            plain = block.complete and not self._rowwise
        else:
            # A row whose inputs are not all there is passed on without calling the node.
            args = [ABSENT if any(a is ABSENT for a in t) else t for t in zip(*inputs, strict=True)]
            spread, plain = True, False
        values = self._values
        append = values.append
        safe, settle, rowwise = _SAFE, self._settle, self._rowwise
        sender = self.sender
        interval = self.spec.options.flush_interval
        perf = time.perf_counter
        n = block.n
        pos = 0
        self._batch_started = perf()
        while pos < n:
            end = min(n, pos + self._chunk)
            first = pos
            started = perf()
            absent = 0
            while pos < end:
                try:
                    # Three copies of one loop: ``method(x)`` for one parent when the
                    # block holds no ABSENT and rows are not frozen one by one (the
                    # common case, checks an item spared), ``method(*x)`` for several
                    # parents, and ``method(x)`` for one, which spares a tuple an item.
                    if plain:
                        for x in args[pos:end]:
                            value = method(x)
                            if type(value) not in safe:
                                value = await settle(value)
                            append(value)
                    elif spread:
                        for x in args[pos:end]:
                            if x is ABSENT:
                                absent += 1
                                append(await settle(ABSENT) if rowwise else ABSENT)
                                continue
                            value = method(*x)
                            if rowwise or type(value) not in safe:
                                value = await settle(value)
                            append(value)
                    else:
                        for x in args[pos:end]:
                            if x is ABSENT:
                                absent += 1
                                append(await settle(ABSENT) if rowwise else ABSENT)
                                continue
                            value = method(x)
                            if rowwise or type(value) not in safe:
                                value = await settle(value)
                            append(value)
                    pos = end
                except _Failed:
                    raise
                except _NODE_ERRORS as exc:
                    if on_error != "skip" or not isinstance(exc, Exception):
                        self.report(phase, exc)
                        await self._emit_quietly()
                        raise _Failed from exc
                    self._skip(phase, exc)
                    absent += 1
                    append(await settle(ABSENT) if rowwise else ABSENT)
                    pos = self._out_start + len(values)
            now = perf()
            if absent:
                self._absent = True
            self._timed(started, now, end - first, end - first - absent)
            if sender is None:
                values.clear()
                self._out_start = pos
            elif now - self._batch_started >= interval:
                await self._emit(flush=True)
                self._batch_started = perf()
        await self._emit()

    async def _transform_batch(
        self, per_block: Callable[..., Any], method: Callable[..., Any], block: Block, on_error: str, phase: str
    ) -> None:
        """``_transform_block`` for a node with ``process_batch`` / ``consume_batch``."""
        self._start_block(block)
        n = block.n
        columns = self._input_columns(block)
        absent = type(ABSENT)
        present: list[int] | None = None
        if not block.complete and any(absent in set(map(type, col)) for col in columns):
            # Rows whose inputs are not all there are passed on without the node.
            present = [k for k in range(n) if all(col[k] is not ABSENT for col in columns)]
            args = [[col[k] for k in present] for col in columns]
        elif self._lend_inputs and on_error != "skip":
            # The node's own lists (it may change them): the block's lists themselves
            # when nothing reads them afterwards (not passed on, no rerun of the block).
            args = [col if type(col) is list else list(col) for col in columns]
        else:
            args = [list(col) for col in columns]
        m = len(args[0]) if args else n
        started = time.perf_counter()
        try:
            out = per_block(*args) if m else []
            if type(out) is CoroutineType:
                out = await out
            if self.sender is not None:
                if type(out) is not list:
                    out = list(out)  # sent (pickled or copied) before the node runs again
                if len(out) != m:
                    raise ValueError(f"{phase}_batch() returned {len(out)} items for {m} inputs")
        except _NODE_ERRORS as exc:
            if on_error == "skip" and isinstance(exc, Exception):
                # Find the failing items: the block again, one row at a time.
                await self._transform_block(method, block, on_error, phase)
                return
            self.report(phase, exc)
            raise _Failed from exc
        self._timed(started, time.perf_counter(), m, m)
        if self.sender is None:
            return
        if present is not None:
            self._absent = True
            values: list[Any] = [ABSENT] * n
            for k, value in zip(present, out, strict=True):
                values[k] = value
            out = values
        await self._emit_batch(out)
