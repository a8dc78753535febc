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
import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from types import CoroutineType
from typing import Any, NoReturn

from ..core.constants import REALTIME, STOP_FLOW
from ..core.graph import ABSENT
from ..core.host import FeedProducer, HostChannel, ResultsConsumer
from ..core.node import ConsumerNode, ProcessorNode, ProducerNode
from .channel import BrokenChannelError, Link, Receiver, Sender, connect
from .logs import ForwardingHandler
from .spec import TaskSpec, TaskStats, describe_failure

__all__ = ["run_task"]

log = logging.getLogger("asyncflow.task")

_PARENT_GONE_EXIT = 70
_CONTROL_CLOSE_TIMEOUT = 10.0
_STATS_INTERVAL = 0.5  # seconds between live stats reports to the parent
_SAMPLES = 256  # per-item times kept for percentiles


class _Failed(Exception):
    """Internal: the node failed and the failure has been reported."""


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
        self.receiver: Receiver | None = None
        self.sender: Sender | None = None
        self.host_sender: Sender | None = None
        self.host_receiver: Receiver | None = None
        self.go = asyncio.Event()
        self.stop_requested = False
        self._in_next = False
        self._sending = 0.0  # seconds spent in _send, subtracted from busy time
        self._produce_task: asyncio.Task[Any] | None = None
        self.failed = False
        self.finished = False
        self._logged_skips: set[type[BaseException]] = set()
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
        if self.sender is not None:
            stats.dropped = self.sender.dropped
            stats.sent = self.sender.sent
        if self.receiver is not None:
            stats.queued = self.receiver.queued
        stats.samples = list(self.samples)
        return dataclasses.replace(stats)

    def _send_stats(self) -> None:
        self.control.send_message(("stats", self.snapshot()))
        self._stats_timer = asyncio.get_running_loop().call_later(_STATS_INTERVAL, self._send_stats)

    def report(self, phase: str, exc: BaseException) -> None:
        """Send a failure to the parent."""
        self.failed = True
        failure = describe_failure(exc, task=self.spec.name, node=self.node, phase=phase)
        self.control.send_message(("error", failure))

    # -- set-up -------------------------------------------------------------
    async def connect(self) -> None:
        spec = self.spec
        options = spec.options
        if spec.inputs:
            links = [await connect(s, f"{spec.name}<in{i}>") for i, s in enumerate(spec.inputs)]
            self.receiver = Receiver.for_flow(
                links, options, positional=spec.in_positional, first=spec.worker, step=spec.stage.width
            )
        if spec.outputs:
            links = [await connect(s, f"{spec.name}<out{i}>") for i, s in enumerate(spec.outputs)]
            width = spec.stage.width
            self.sender = Sender.for_flow(
                links,
                options,
                # Workers of a multi-task stage never drop: that would break the
                # positional order; the single task in front of them drops instead.
                realtime=spec.flow_type == REALTIME and width == 1,
                first=spec.worker if spec.out_positional else 0,
                step=width if spec.out_positional else 1,
            )

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
            self.node._host = _HostRecv(self.host_receiver)

    # -- the run ------------------------------------------------------------
    async def run(self) -> None:
        opened = False
        try:
            await _call(self.node.open, _is_async(self.node.open))
            opened = True
        except Exception as exc:
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
                except Exception as exc:
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
            while await self.receiver.recv() is not STOP_FLOW:
                pass

    async def _stream(self) -> None:
        if isinstance(self.node, ProducerNode):
            await self._produce(self.node)
        elif isinstance(self.node, ProcessorNode):
            await self._transform(self.node.process, self.node.on_error, "process")
        elif isinstance(self.node, ConsumerNode):
            await self._transform(self.node.consume, self.node.on_error, "consume")

    async def _send(self, rows: list[Any], flush: bool = False) -> None:
        assert self.sender is not None
        started = time.perf_counter()
        await self.sender.send_many(rows)
        # Waiting for room downstream is not the node's work: keep it out of busy time.
        self._sending += time.perf_counter() - started
        if flush:
            # The rows have waited flush_interval already, and the node may block
            # the loop next (a sync next() that sleeps): write them now.
            self.sender.flush()

    async def _unsendable(self, exc: Exception, outs: list[Any]) -> NoReturn:
        wrapped = TypeError(f"output of {self.node.describe()} cannot be sent to the next task: {exc}")
        wrapped.__cause__ = exc
        self.report("send", wrapped)
        await self._send_before_failing(outs)
        raise _Failed from exc

    async def _await_next(
        self, coro: Any, outs: list[Any], batch_started: float, interval: float
    ) -> Any:
        """Await an async ``next()``; if it is still waiting when ``outs`` is due, send ``outs``.

        A source that waits (a socket, the host's ``put``) must not hold back the
        items it has already produced.  ``outs`` is emptied in place once sent.
        """
        future = asyncio.ensure_future(coro)
        try:
            # One turn of the loop: a next() that is ready by then keeps the batch
            # growing; one that waits longer sends what came before it now.
            await asyncio.sleep(0)
            if not future.done() or time.perf_counter() - batch_started >= interval:
                await self._send(outs, flush=True)
                outs.clear()
            return await future
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def _send_before_failing(self, outs: list[Any]) -> None:
        """Pass on what this batch produced before the item that failed."""
        if outs and self.sender is not None:
            try:
                await self.sender.send_many(outs)
            except Exception:
                pass

    def _next_failed(self, exc: Exception) -> bool:
        """Whether an exception from ``next()`` is a failure (``False``: the producer ended)."""
        if isinstance(exc, (StopIteration, StopAsyncIteration)):
            return False
        # ``raise StopIteration`` inside a coroutine reaches us as a RuntimeError.
        if isinstance(exc, RuntimeError) and isinstance(exc.__cause__, (StopIteration, StopAsyncIteration)):
            return False
        self.report("next", exc)
        return True

    async def _produce(self, node: ProducerNode) -> None:
        method, is_async = node.next, _is_async(node.next)
        receiver, sender = self.receiver, self.sender
        build = compile_build(self.spec.stage.out_sources)
        freeze = sender.freeze if sender is not None else None
        blank = (ABSENT,) * len(self.spec.stage.in_layout)
        stats = self.stats
        limit = self.spec.options.batch_size
        interval = self.spec.options.flush_interval
        perf = time.perf_counter
        sample = self.samples.append
        self._produce_task = asyncio.current_task()
        await self.go.wait()
        own_open = True
        upstream_open = receiver is not None
        while own_open or upstream_open:
            if self.stop_requested:
                own_open = False
            rows: list[Any] | None = None
            if upstream_open:
                assert receiver is not None
                rows = receiver.take_ready(limit)
                if rows is None:
                    upstream_open = False
                    continue
                if not rows:
                    if sender is not None:
                        sender.flush()
                    await receiver.wait()
                    continue
                stats.received += len(rows)
            elif not own_open:
                break
            outs: list[Any] = []
            count = limit if rows is None else len(rows)
            started = batch_started = previous = perf()
            sending_before = self._sending
            produced = 0
            for i in range(count):
                value: Any = ABSENT
                if own_open and self.stop_requested:
                    own_open = False  # stop() arrived during this batch: emit nothing more
                    if rows is None:
                        break
                if own_open:
                    try:
                        value = method()
                        if is_async or type(value) is CoroutineType:
                            self._in_next = True
                            try:
                                if outs:
                                    value = await self._await_next(value, outs, batch_started, interval)
                                    if not outs:  # they were sent while next() waited
                                        batch_started = perf()
                                else:
                                    value = await value
                            finally:
                                self._in_next = False
                        produced += 1
                    except asyncio.CancelledError:
                        if not self.stop_requested:
                            raise
                        own_open = False  # stopped while next() was waiting
                        value = ABSENT
                        if rows is None:
                            break
                    except Exception as exc:
                        if self._next_failed(exc):
                            await self._send_before_failing(outs)
                            raise _Failed from exc
                        own_open = False
                        value = ABSENT
                        if rows is None:
                            break
                now = perf()
                if value is not ABSENT:
                    sample(now - previous)
                previous = now
                if sender is not None:
                    try:
                        outs.append(freeze(build(blank if rows is None else rows[i], value)))  # type: ignore[misc]
                    except Exception as exc:
                        await self._unsendable(exc, outs)
                    if now - batch_started >= interval:
                        await self._send(outs, flush=True)
                        outs = []
                        # A slow source: give the loop a turn so that stop() is seen
                        # before the next item, not a whole batch later.
                        await asyncio.sleep(0)
                        batch_started = previous = perf()
            stats.processed += produced
            stats.busy_seconds += perf() - started - (self._sending - sending_before)
            if outs:
                await self._send(outs)
            await asyncio.sleep(0)  # let control messages and credit in

    async def _transform(self, method: Callable[..., Any], on_error: str, phase: str) -> None:
        receiver, sender = self.receiver, self.sender
        assert receiver is not None
        is_async = _is_async(method)
        slots = self.spec.stage.parent_slots
        single = slots[0] if len(slots) == 1 else -1
        build = compile_build(self.spec.stage.out_sources)
        freeze = sender.freeze if sender is not None else None
        stats = self.stats
        limit = self.spec.options.batch_size
        interval = self.spec.options.flush_interval
        perf = time.perf_counter
        sample = self.samples.append
        while True:
            rows = receiver.take_ready(limit)
            if rows is None:
                break
            if not rows:
                if sender is not None:
                    sender.flush()
                await receiver.wait()
                continue
            outs: list[Any] = []
            started = batch_started = previous = perf()
            sending_before = self._sending
            done = 0
            for row in rows:
                if single >= 0:
                    x = row[single]
                    inputs: Any = None if x is ABSENT else (x,)
                else:
                    inputs = tuple(row[s] for s in slots)
                    if any(v is ABSENT for v in inputs):  # not ``in``: it would call == on arrays
                        inputs = None
                value: Any = ABSENT
                if inputs is not None:
                    try:
                        value = method(*inputs)
                        if is_async or type(value) is CoroutineType:
                            value = await value
                        done += 1
                    except Exception as exc:
                        value = ABSENT
                        if on_error != "skip":
                            self.report(phase, exc)
                            await self._send_before_failing(outs)
                            raise _Failed from exc
                        self._skip(phase, exc)
                now = perf()
                if inputs is not None:
                    sample(now - previous)
                previous = now
                if sender is not None:
                    try:
                        outs.append(freeze(build(row, value)))  # type: ignore[misc]
                    except Exception as exc:
                        await self._unsendable(exc, outs)
                    if now - batch_started >= interval:
                        await self._send(outs, flush=True)
                        outs = []
                        batch_started = previous = perf()
            stats.received += len(rows)
            stats.processed += done
            stats.busy_seconds += perf() - started - (self._sending - sending_before)
            if outs:
                await self._send(outs)

    def _skip(self, phase: str, exc: Exception) -> None:
        self.stats.skipped += 1
        if type(exc) not in self._logged_skips:
            self._logged_skips.add(type(exc))
            log.warning(
                "%s (task %s): %s() raised %s; skipping this item (on_error='skip'), and "
                "later %s errors silently",
                self.node.describe(),
                self.spec.name,
                phase,
                type(exc).__name__,
                type(exc).__name__,
                exc_info=exc,
            )

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
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

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
    except Exception as exc:
        runner.report("engine", exc)
    finally:
        await runner.aclose()
