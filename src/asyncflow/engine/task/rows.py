"""``BlockTask``: a task's state, its control link, and the rows of one block (fixing and sending a node's outputs).

The loops that call the node live in ``producing.py`` and ``transforming.py``; the
task's set-up and run in ``runner.py``.  See docs/design.md#fixing-outputs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import deque
from collections.abc import Sequence
from types import CoroutineType
from typing import Any, NoReturn

from .. import wire
from ..channel import Block, Frozen, Link, Receiver, Sender, Tee
from ..logs import SkipLog
from ..spec import TaskSpec, TaskStats, describe_failure, unsendable_error
from .common import (
    _CONTROL_CLOSE_TIMEOUT,
    _PARENT_GONE_EXIT,
    _SAFE,
    _SAMPLES,
    _STATS_INTERVAL,
    _BaseRaised,
    _catching_base,
    _Failed,
    _unreadable_error,
    compile_build,
    log,
)

__all__ = ["BlockTask"]


class BlockTask:
    """One node's task in this process: its state, control, and the rows of the block in hand."""

    def __init__(self, spec: TaskSpec, control: Link) -> None:
        self.spec = spec
        self.node = spec.stage.node
        self.control = control
        self.stats = TaskStats()
        self.samples: deque[float] = deque(maxlen=_SAMPLES)
        self._started = time.perf_counter()
        self._stats_timer: asyncio.TimerHandle | None = None
        self._stats_due = float("inf")  # when the stats are next due (set once streaming)
        self.receiver: Receiver | None = None
        self.sender: Sender | Tee | None = None
        self._senders: list[Sender] = []  # one per target stage (``self.sender`` is a Tee of several)
        self.stale = 0  # rows dropped as older than max_age
        self._max_age = spec.options.max_age
        self._ages: deque[float] = deque(maxlen=_SAMPLES)
        self.host_sender: Sender | None = None
        self.host_receiver: Receiver | None = None
        self.go = asyncio.Event()
        self.stop_requested = False
        self._in_next = False
        # The block being worked on (see "the rows of one block" below).
        self._block = Block((), 0, 0, True)
        self._born = self._newest = 0.0  # birth times of the block's rows (``wire``)
        self._values: list[Any] = []
        self._out_start = 0
        self._rowwise = False
        self._mixed = False
        self._extra_bytes = 0
        self._batch_started = 0.0
        self._chunk = 1  # rows between two looks at the clock
        self._batch_size = spec.options.batch_size  # read once a chunk (``_timed``)
        self._flush_interval = spec.options.flush_interval
        self._producing = False
        self._build = compile_build(spec.stage.out_sources)
        self._passed_on = sorted({s for s in spec.stage.out_sources if s >= 0})  # input slots sent on as they are
        self._own_only = spec.stage.out_sources == (-1,)  # the rows sent on hold our value alone
        slots = spec.stage.parent_slots
        # A batch method may be handed the received lists themselves (see _transform_batch).
        self._lend_inputs = len(set(slots)) == len(slots) and not set(slots) & set(self._passed_on)
        # Input columns that are also passed on unchanged (a diamond: A -> P, (A, P) -> D):
        # P gets its own copy of a mutable value, so what it does to it never reaches D.
        self._shared_inputs = set(slots) & set(self._passed_on)
        self._produce_task: asyncio.Task[Any] | None = None
        self.failed = False
        self.finished = False
        self._skip_log = SkipLog(log, self.node, spec.name)
        control.on_event = self._on_control
        # A "stop" may have arrived before we were listening (a node failed to open
        # elsewhere): it waits in the link's queue, and nothing else would wake us.
        self._on_control()

    # -- control ------------------------------------------------------------
    def _on_control(self) -> None:
        while self.control.messages:
            message = self.control.messages.popleft()
            if message[0] == "stop":
                self.stop_requested = True
                self.go.set()
                if self._in_next and self._produce_task is not None:
                    # An async next() that waits (for a socket, a camera, the host)
                    # would hold the stop back: interrupt it; the stream ends there.
                    self._produce_task.cancel()
            elif message[0] == "go":
                self.go.set()
        if self.control.eof and not self.finished:
            # The parent is gone: nobody will collect our results or stop us.
            os._exit(_PARENT_GONE_EXIT)

    def snapshot(self) -> TaskStats:
        """The stats as they are now (a copy the parent may keep)."""
        stats = self.stats
        stats.wall_seconds = time.perf_counter() - self._started
        drops: dict[str, dict[str, int]] = {}
        for sender in self._senders:
            if sender.dropped:
                drops.setdefault(sender.target, {})["full"] = sender.dropped
        if self.sender is not None:
            stats.sent = self.sender.sent
        if self.receiver is not None:
            stats.queued = self.receiver.queued
            if self.receiver.order_dropped and self.receiver.order_of is not None:
                drops.setdefault(self.receiver.order_of, {})["order"] = self.receiver.order_dropped
        if self.stale:
            drops.setdefault(self.node.name, {})["stale"] = self.stale
        stats.drops = drops
        stats.dropped = sum(n for causes in drops.values() for n in causes.values())
        stats.samples = list(self.samples)
        stats.ages = list(self._ages)
        return dataclasses.replace(stats)

    def _send_stats(self) -> None:
        self._push_stats()
        self._stats_timer = asyncio.get_running_loop().call_later(_STATS_INTERVAL, self._send_stats)

    def _push_stats(self) -> None:
        """Send the stats now (a write on the control link: no turn of the loop needed)."""
        self._stats_due = time.perf_counter() + _STATS_INTERVAL
        self.control.send_message(("stats", self.snapshot()))

    def report(self, phase: str, exc: BaseException) -> None:
        """Send a failure to the parent."""
        if isinstance(exc, _BaseRaised) and exc.__cause__ is not None:
            exc = exc.__cause__
        self.failed = True
        failure = describe_failure(exc, task=self.spec.name, node=self.node, phase=phase)
        self.control.send_message(("error", failure))

    # -- the rows of one block ------------------------------------------------
    #
    # The loops below call the node on a block's rows a chunk at a time and
    # collect its return values in ``self._values`` (rows ``self._out_start`` on).
    # A chunk grows while it takes under a quarter of ``flush_interval`` (up to
    # ``batch_size`` rows), so the clock is read once a chunk and a fast node pays
    # only for its call; a slow node gets chunks of one row, each checked against
    # the deadline.  A value of a type known to be immutable is kept as it is; any
    # other goes through ``_settle`` at once, before the node is called again: an
    # awaitable is awaited, a mutable value has its row frozen (pickled) then.
    # ``_emit`` sends the values as one block of columns, or as rows when some had
    # to be frozen (``_mixed``) or the input rows themselves hold mutable values
    # (``_rowwise``: every row is frozen as it is made).

    def _start_block(self, block: Block) -> None:
        self._block = block
        self._born, self._newest = block.born, block.newest
        self._out_start = 0
        self._rowwise = self.sender is not None and not block.safe and not self._passes_on_immutables(block)
        self._mixed = False
        self._extra_bytes = 0
        self._absent = False  # an ABSENT went into self._values for this block

    def _passes_on_immutables(self, block: Block) -> bool:
        """Whether every value this task passes on unchanged from ``block`` is immutable.

        Only those matter: the node's own outputs are looked at as it returns them.
        """
        for s in self._passed_on:
            col = block.cols[s]
            if not set(map(type, col)) <= _SAFE and any(wire.immutable_size((v,)) < 0 for v in col):
                return False
        return True

    def _passed_row(self, k: int) -> tuple[Any, ...]:
        """Row ``k`` of the block as ``_build`` reads it: the values passed on, ``None`` elsewhere.

        Only those: a batch method may have emptied the lists it was handed.
        """
        cols, passed = self._block.cols, self._passed_on
        return tuple(cols[s][k] if s in passed else None for s in range(len(cols)))

    def _frozen_row(self, value: Any) -> Any:
        row = self._build(self._passed_row(self._out_start + len(self._values)), value)
        assert self.sender is not None
        return self.sender.freeze(row)

    async def _settle(self, value: Any) -> Any:
        """What to keep for a value the fast path did not accept (see above)."""
        if type(value) is CoroutineType:
            value = await (self._await_next(value) if self._producing else value)
        if self.sender is None:
            return value
        try:
            if self._rowwise:
                return self._frozen_row(value)
            kind = type(value)
            if kind in _SAFE:
                return value
            if kind is str or kind is bytes:
                self._extra_bytes += len(value)
                return value
            size = wire.immutable_size((value,))
            if size >= 0:
                if kind is tuple:
                    self._extra_bytes += size
                else:
                    _SAFE.add(kind)  # an enum: its members are singletons
                return value
            self._mixed = True
            return self._frozen_row(value)
        except Exception as exc:
            await self._unsendable(exc)

    def _out_cols(self, values: list[Any], start: int) -> tuple[Sequence[Any], ...]:
        """The output columns of rows ``start`` .. ``start + len(values) - 1``: ours, and those passed on."""
        if self._own_only:
            return (values,)
        block, end = self._block, start + len(values)
        return tuple(values if s < 0 else block.cols[s][start:end] for s in self.spec.stage.out_sources)

    @property
    def _out_complete(self) -> bool:
        """Whether the rows sent for this block hold no ABSENT."""
        return self._block.complete and not self._absent

    async def _emit(self, flush: bool = False) -> None:
        """Send the values collected so far (see above); ``flush``: write them now."""
        values, sender = self._values, self.sender
        k = len(values)
        start = self._out_start
        self._out_start = start + k
        if sender is None or not k:
            values.clear()
            if flush and sender is not None:
                sender.flush()
            return
        block = self._block
        born, newest = self._birth()
        if self._rowwise or self._mixed:
            if self._rowwise:
                entries = list(values)
            else:
                build, row = self._build, self._passed_row
                entries = [v if type(v) is Frozen else build(row(start + i), v) for i, v in enumerate(values)]
            values.clear()
            self._mixed = False
            await sender.send_many(entries, born, newest)
        else:
            cols = self._out_cols(list(values), start)
            nbytes = block.nbytes * k // max(block.n, 1) + 8 * k + self._extra_bytes
            values.clear()
            self._extra_bytes = 0
            await sender.send_block(Block(cols, k, nbytes, True, self._out_complete, born, newest))
        if flush:
            sender.flush()

    def _birth(self) -> tuple[float, float]:
        """Birth times of the rows being sent: the input block's, or now for a producer's own rows."""
        if self._born:
            return self._born, self._newest
        if self._producing:
            now = time.time()
            return now, now
        return 0.0, 0.0

    async def _emit_quietly(self) -> None:
        """Pass on what this block produced before the item that failed."""
        try:
            await self._emit(flush=True)
        except Exception:
            pass

    async def _unsendable(self, exc: Exception) -> NoReturn:
        self.report("send", unsendable_error(self.node, exc))
        await self._emit_quietly()
        raise _Failed from exc

    async def _await_next(self, coro: Any) -> Any:
        """Await an async ``next()``; if it is still waiting when values are due, send them.

        A source that waits (a socket, the host's ``put``) must not hold back the
        items it has already produced.
        """
        self._in_next = True
        future = asyncio.ensure_future(_catching_base(coro))
        try:
            # One turn of the loop: a next() that is ready by then keeps the batch
            # growing; one that waits longer sends what came before it now.
            await asyncio.sleep(0)
            if self._values and (
                not future.done() or time.perf_counter() - self._batch_started >= self.spec.options.flush_interval
            ):
                await self._emit(flush=True)
                self._batch_started = time.perf_counter()
            return await future
        except asyncio.CancelledError:
            future.cancel()
            raise
        finally:
            self._in_next = False

    def _timed(self, started: float, ended: float, rows: int, ran: int) -> None:
        """Account a chunk: ``rows`` rows in ``ended - started`` s, the node ran on ``ran``; resize chunks."""
        elapsed = ended - started
        stats = self.stats
        if ended >= self._stats_due:
            # A node working through a long block keeps the loop (and its timer) waiting.
            self._push_stats()
        stats.processed += ran
        stats.busy_seconds += elapsed
        if ran:
            self.samples.append(elapsed / ran)
        interval = self._flush_interval
        if elapsed < interval / 4:
            if rows >= self._chunk:
                self._chunk = min(2 * self._chunk, self._batch_size)
        elif elapsed > interval / 2 and self._chunk > 1:
            self._chunk //= 2

    async def _next_block(self, limit: int) -> Block | None:
        """The rows upstream has sent (``None`` at the end of the stream).

        An empty block means nothing had come: what we had sent is flushed and we
        have waited until something arrives; the caller looks again.
        """
        receiver = self.receiver
        assert receiver is not None
        try:
            block = receiver.take_block(limit)
        except Exception as exc:
            # A row that pickled where it was made but does not unpickle here.
            self.report("receive", _unreadable_error(self.spec.source, self.node, exc))
            raise _Failed from exc
        if block is None or block.n:
            if block is not None:
                self.stats.received += block.n
            return block
        if self.sender is not None:
            self.sender.flush()
        await receiver.wait()
        return block

    # -- nodes with batch methods ----------------------------------------------
    #
    # A node may define ``next_batch(max_items)``, ``process_batch(*columns)`` or
    # ``consume_batch(*columns)`` next to its per-item method (see ``core.node``):
    # the task then calls it once a block instead of once a row.

    async def _emit_batch(self, values: list[Any]) -> None:
        """Send a batch method's values for the rest of the block.

        Pickled at once (so the node cannot change them any more) when they can go
        in-band; arrays (and the rows of several tasks) take ``_keep_batch``'s way.
        """
        sender = self.sender
        if sender is not None and sender.blocks_whole and not self._values:
            k = len(values)
            try:
                # Not looked at value by value: the receiving task checks what it passes on.
                body = wire.dump_cols(
                    k, self._out_cols(values, self._out_start), self._out_complete, False, *self._birth()
                )
            except Exception as exc:
                await self._unsendable(exc)
            if body is not None:
                self._out_start += k
                await sender.send_pickled(body, k)
                return
        await self._keep_batch(values)
        await self._emit()

    async def _keep_batch(self, values: Sequence[Any]) -> None:
        """Collect a batch method's return values, fixing mutable ones as ``_settle`` does."""
        if self.sender is None:
            return
        if not self._rowwise and set(map(type, values)) <= _SAFE:
            self._values.extend(values)
            return
        append, settle = self._values.append, self._settle
        for value in values:
            append(value if not self._rowwise and type(value) in _SAFE else await settle(value))

    def _skip(self, phase: str, exc: Exception) -> None:
        self.stats.skipped += 1
        self._skip_log(phase, exc)

    async def aclose(self) -> None:
        """Close the links: inputs now, outputs and control once their peer has read everything."""
        if self.receiver is not None:
            for link in self.receiver.links:
                link.close()
            self.receiver.close()
        if self.host_receiver is not None:
            for link in self.host_receiver.links:
                link.close()
            self.host_receiver.close()
        for sender in (self.sender, self.host_sender):
            if sender is not None:
                for link in sender.links:
                    await link.aclose_after_peer()
                sender.close()
        # The parent closes the control link once it has our "done".
        await self.control.aclose_after_peer(_CONTROL_CLOSE_TIMEOUT)
