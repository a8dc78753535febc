"""The loop a child process runs for one task: open, stream rows, close, report.

Messages on the control link, child -> parent: ``("ready",)`` once ``open()``
returned, ``("stats", TaskStats)`` every half second, ``("log", record)`` for what
the process logs (see ``logs.py``), ``("error", TaskFailure)``, and
``("done", TaskStats)`` at the end.  Parent -> child:
``("go",)`` (producers start emitting once every task is ready) and
``("stop",)`` (producers stop emitting; ``STOP_FLOW`` then travels the graph).
If the control link breaks, the parent is gone and the task exits at once.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import CoroutineType
from typing import Any, NoReturn

from ..core.constants import REALTIME, STOP_FLOW
from ..core.graph import ABSENT
from ..core.host import FeedProducer, HostChannel, ResultsConsumer
from ..core.node import ConsumerNode, ProcessorNode, ProducerNode, batch_method
from . import wire
from .channel import Block, BrokenChannelError, Frozen, Link, Receiver, Sender, connect
from .logs import ForwardingHandler, SkipLog
from .spec import TaskSpec, TaskStats, describe_failure, unsendable_error
from .tee import Tee

__all__ = ["run_task"]

log = logging.getLogger("asyncflow.task")

_PARENT_GONE_EXIT = 70
_CONTROL_CLOSE_TIMEOUT = 10.0
_STATS_INTERVAL = 0.5  # seconds between live stats reports to the parent
_SAMPLES = 256  # per-item times kept for percentiles


#: Types whose values are immutable and small: kept as they are, no freezing, 8 bytes
#: each for batching.  Enum types join when first seen (``TaskRunner._settle``).
_SAFE: set[type] = {*wire.SCALARS, type(ABSENT)}


class _Failed(Exception):
    """Internal: the node failed and the failure has been reported."""


#: What a node's method may raise that fails the node.  BaseExceptions other than
#: cancellation (``sys.exit()``, a stray ``KeyboardInterrupt``, ``GeneratorExit``)
#: fail it too: they must not escape the task's loop, which would leave the task
#: neither finished nor reported (the flow would hang).  ``on_error="skip"`` skips
#: only ``Exception`` s.
_NODE_ERRORS: tuple[type[BaseException], ...] = (Exception, KeyboardInterrupt, SystemExit, GeneratorExit)


class _BaseRaised(Exception):
    """Carries a BaseException that a node's coroutine raised in a task of its own (``_await_next``)."""


async def _catching_base(coro: Any) -> Any:
    """Await ``coro``; a BaseException from it (not cancellation) comes back as ``_BaseRaised``.

    asyncio re-raises a ``KeyboardInterrupt`` / ``SystemExit`` raised in a Task out of
    the event loop itself, past every handler in the task's own code.
    """
    try:
        return await coro
    except (KeyboardInterrupt, SystemExit, GeneratorExit) as exc:
        raise _BaseRaised() from exc


def _is_async(method: Callable[..., Any]) -> bool:
    return asyncio.iscoroutinefunction(method)


def compile_build(sources: tuple[int, ...]) -> Callable[[tuple[Any, ...], Any], tuple[Any, ...]]:
    """A function ``(row, value) -> next row`` for a stage's ``out_sources``.

    Generated as a tuple display (``(row[0], value, row[2])``), which is several
    times faster per row than a generic comprehension; the sources are ints.
    """
    parts = ", ".join("value" if s < 0 else f"row[{int(s)}]" for s in sources)
    code = f"lambda row, value: ({parts}{',' if len(sources) == 1 else ''})"
    built: Callable[[tuple[Any, ...], Any], tuple[Any, ...]] = eval(code)
    return built


def _unreadable_error(source: str, node: Any, exc: Exception) -> TypeError:
    """The error for an output of ``source`` that ``node``'s task cannot unpickle."""
    error = TypeError(
        f"an output of {source!r} could not be read back in {node.describe()}'s process "
        f"({type(exc).__name__}: {exc}); values must survive pickle.loads(pickle.dumps(value)), e.g. an "
        "exception class whose __init__ takes other arguments than its args does not"
    )
    error.__cause__ = exc
    return error


def _private(column: Sequence[Any]) -> list[Any]:
    """``column`` with every mutable value replaced by a deep copy of it."""
    size = wire.immutable_size
    return [v if size((v,)) >= 0 else copy.deepcopy(v) for v in column]


async def _call(method: Callable[..., Any], is_async: bool, *args: Any) -> Any:
    result = method(*args)
    if is_async or type(result) is CoroutineType or asyncio.isfuture(result):
        result = await result
    return result


class TaskRunner:
    """Runs one node in this process between its receiver and its sender."""

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

    # -- set-up -------------------------------------------------------------
    async def connect(self) -> None:
        spec = self.spec
        options = spec.options
        realtime = spec.flow_type == REALTIME
        if spec.inputs:
            links = [await connect(s, f"{spec.name}<in{i}>") for i, s in enumerate(spec.inputs)]
            self.receiver = Receiver.for_flow(
                links,
                options,
                positional=spec.in_positional,
                first=spec.worker,
                step=spec.stage.width,
                pull=realtime,
                order_of=spec.order_of,
            )
        width = spec.stage.width
        for g, group in enumerate(spec.outputs):
            links = [await connect(s, f"{spec.name}<out{g}.{i}>") for i, s in enumerate(group)]
            self._senders.append(
                Sender.for_flow(
                    links,
                    options,
                    realtime=realtime,
                    first=spec.worker if spec.out_positional else 0,
                    step=width if spec.out_positional else 1,
                    target=spec.out_targets[g],
                )
            )
        if len(self._senders) == 1 and spec.out_columns[0] == tuple(range(len(spec.stage.out_layout))):
            self.sender = self._senders[0]
        elif self._senders:
            self.sender = Tee(self._senders, list(spec.out_columns))

    async def connect_host(self) -> None:
        """Give a host node (FeedProducer, ResultsConsumer) its channel to the parent."""
        spec = self.spec
        if spec.host_link is None:
            return
        link = await connect(spec.host_link, f"{spec.name}<host>")
        options = spec.options
        if isinstance(self.node, ResultsConsumer):
            self.host_sender = Sender.for_flow([link], options)
            self.node._host = _HostSend(self.host_sender)
        elif isinstance(self.node, FeedProducer):
            self.host_receiver = Receiver.for_flow([link], options)
            feed = _HostRecv(self.host_receiver)
            self.node._host = feed
            feed.end_at_parent(self, link)

    # -- the run ------------------------------------------------------------
    async def run(self) -> None:
        opened = False
        try:
            await _call(self.node.open, _is_async(self.node.open))
            opened = True
        except _NODE_ERRORS as exc:
            self.report("open", exc)
        if opened:
            self.control.send_message(("ready",))
            self._started = time.perf_counter()
            self._send_stats()
            try:
                await self._stream()
            except _Failed:
                pass
            except BrokenChannelError:
                pass  # downstream died; the parent reports it
            finally:
                try:
                    await _call(self.node.close, _is_async(self.node.close))
                except _NODE_ERRORS as exc:
                    self.report("close", exc)
        await self._finish()
        if self._stats_timer is not None:
            self._stats_timer.cancel()
        self.finished = True
        final = self.snapshot()
        final.finished = True
        self.control.send_message(("done", final))

    async def _finish(self) -> None:
        """Pass STOP_FLOW on, then take (and discard) whatever upstream still sends."""
        if self.sender is not None:
            await self.sender.send_stop()
        if self.host_sender is not None:
            await self.host_sender.send_stop()
        if self.receiver is not None:
            await self.receiver.drain()

    async def _stream(self) -> None:
        if isinstance(self.node, ProducerNode):
            await self._produce(self.node)
        elif isinstance(self.node, ProcessorNode):
            await self._transform(self.node.process, self.node.on_error, "process")
        elif isinstance(self.node, ConsumerNode):
            await self._transform(self.node.consume, self.node.on_error, "consume")

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

    def _next_failed(self, exc: BaseException) -> bool:
        """Whether an exception from ``next()`` is a failure (``False``: the producer ended)."""
        if isinstance(exc, (StopIteration, StopAsyncIteration)):
            return False
        # ``raise StopIteration`` inside a coroutine reaches us as a RuntimeError.
        if isinstance(exc, RuntimeError) and isinstance(exc.__cause__, (StopIteration, StopAsyncIteration)):
            return False
        self.report("next", exc)
        return True

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


class _HostSend(HostChannel):
    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    async def send(self, row: tuple[Any, ...]) -> None:
        await self.sender.send_many([self.sender.freeze(row)])


class _HostRecv(HostChannel):
    """A FeedProducer's feed: what the host's ``put()`` accepted, in order, up to its end.

    "stop" does not end such a task at once: stopping would drop the items that
    ``put()`` has accepted and that wait in this link.  The task asks the parent to
    end the feed instead (a message on the link); the parent refuses new items and
    ends the feed behind the accepted ones, and the task emits them and ends there.
    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self._runner: TaskRunner | None = None
        self._link: Link | None = None

    def end_at_parent(self, runner: TaskRunner, link: Link) -> None:
        """Turn the task's "stop" into a request to the parent to end the feed."""
        self._runner, self._link = runner, link
        if runner.stop_requested:  # "stop" came while the task was connecting
            runner.stop_requested = False
            self._ask_end()
        runner.control.on_event = self._on_control

    def _on_control(self) -> None:
        runner = self._runner
        assert runner is not None
        messages = runner.control.messages
        if any(message[0] == "stop" for message in messages):
            kept = [message for message in messages if message[0] != "stop"]
            messages.clear()
            messages.extend(kept)
            self._ask_end()
        runner._on_control()

    def _ask_end(self) -> None:
        assert self._runner is not None and self._link is not None
        self._runner.go.set()  # as "stop" does: read the feed to its end without waiting for "go"
        self._link.send_message(("stop",))

    async def recv(self) -> Any:
        row = await self.receiver.recv()
        return None if row is STOP_FLOW else row


async def run_task(spec: TaskSpec) -> None:
    """Entry point of a task process (run on uvloop by the process wrapper)."""
    control = await connect(spec.control, f"{spec.name}<control>")
    handler = ForwardingHandler(control.send_message, asyncio.get_running_loop())
    logging.getLogger().addHandler(handler)
    runner = TaskRunner(spec, control)
    try:
        await runner.connect()
        await runner.connect_host()
        await runner.run()
    except _NODE_ERRORS as exc:
        runner.report("engine", exc)
    finally:
        try:
            await runner.aclose()
        finally:
            # A pool process runs other tasks after this one: leave nothing of it behind.
            logging.getLogger().removeHandler(handler)
