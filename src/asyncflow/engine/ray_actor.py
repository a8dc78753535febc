"""What runs inside a Ray actor: one task's node, applied to whole batches of rows.

The Ray engine's counterpart of ``task.py``: ``produce`` pulls a batch from a
producer (zipped onto the rows of the producers before it), ``process`` runs a
processor or consumer over a batch and returns the rows the next stage reads.
Rows and ``ABSENT`` follow the same model as the local engine (``core.graph``).

Every call returns a ``Report`` for the driver next to its rows: how many rows,
their size, whether the producer has ended, the task's stats, and a failure.  A
node's exception does not escape the call: the rows before the failing item go
on down the chain (as on the local engine, nothing emitted before a failure is
lost), the report carries the failure as a ``TaskFailure``, and every later call
returns no rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import CoroutineType
from typing import Any

from ..core.graph import ABSENT, Stage
from ..core.node import ConsumerNode, ProcessorNode, ProducerNode
from .logs import SkipLog
from .spec import TaskFailure, TaskStats, describe_failure, unsendable_error
from .task import compile_build
from .wire import immutable_size

__all__ = ["Pickled", "Report", "TaskRunnerActor"]

log = logging.getLogger("asyncflow.ray")

_STATS_INTERVAL = 0.5  # seconds between the per-item time samples sent to the driver
_IDLE_WAIT = 0.05  # how long an empty produce() call waits for a pending async next()


class Pickled:
    """A row fixed when its node returned it (it held something mutable, e.g. a reused frame)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        return (Pickled, (self.data,))


def _fix(row: tuple[Any, ...]) -> Any:
    """The row itself if nothing in it can change, else its pickle: docs/design.md#fixing-outputs, "an item is
    fixed when next() or process() returns it" (a batch is serialized only after the call)."""
    return row if immutable_size(row) >= 0 else Pickled(pickle.dumps(row, 5))


def _unfix(row: Any) -> tuple[Any, ...]:
    return pickle.loads(row.data) if type(row) is Pickled else row  # type: ignore[no-any-return]


def _size(value: Any) -> int:
    """A cheap estimate of the bytes ``value`` holds (for the batch and window byte budgets)."""
    kind = type(value)
    if kind is bytes or kind is str or kind is bytearray:
        return len(value)
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if kind is tuple or kind is list:
        return 16 + sum(_size(v) for v in value[:16])
    return 16


def _split(rows: list[Any], parts: int) -> list[list[Any]]:
    """``rows`` cut into ``parts`` consecutive chunks whose sizes differ by one at most."""
    size, extra = divmod(len(rows), parts)
    chunks: list[list[Any]] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        chunks.append(rows[start:end])
        start = end
    return chunks


def _is_end(exc: BaseException) -> bool:
    """Whether an exception from ``next()`` ends the producer's stream (rather than failing it)."""
    if isinstance(exc, (StopIteration, StopAsyncIteration)):
        return True
    # ``raise StopIteration`` inside a coroutine reaches us as a RuntimeError.
    return isinstance(exc, RuntimeError) and isinstance(exc.__cause__, (StopIteration, StopAsyncIteration))


class _NotYet(Exception):
    """Internal: an async ``next()`` is still waiting; the call returns what it has."""


@dataclass
class Report:
    """What one actor call tells the driver besides the rows it returns."""

    rows: int = 0  # rows returned
    nbytes: int = 0  # estimated size of the values this task added (producers)
    ended: bool = False  # a producer's own stream has ended
    parts: tuple[int, ...] = ()  # produce(parts > 1): the rows in each part, in order
    failure: TaskFailure | None = None
    stats: TaskStats | None = None


class TaskRunnerActor:
    """One task of the flow (wrapped with ``ray.remote`` by the scheduler)."""

    def __init__(
        self, stage: Stage, task: str, device: str | None, has_next: bool = True, log_level: int | None = None
    ) -> None:
        if device is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = device
        if log_level is not None:
            logging.getLogger("asyncflow").setLevel(log_level)
        self.stage = stage
        self.node = stage.node
        self.task = task
        self.has_next = has_next
        self.build = compile_build(stage.out_sources)
        self.blank = (ABSENT,) * len(stage.in_layout)
        self.stats = TaskStats()
        self.samples: deque[float] = deque(maxlen=256)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.opened = False
        self.failed = False
        self.ended = False
        self.started = time.perf_counter()
        self._samples_sent = 0.0
        self._pending: asyncio.Task[Any] | None = None  # an async next() still waiting
        self._skip_log = SkipLog(log, self.node, self.task)

    def __repr__(self) -> str:  # Ray prefixes the actor's log lines with it
        return f"asyncflow {self.task}"

    # -- helpers --------------------------------------------------------------
    def _loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None:
            import uvloop

            self.loop = uvloop.new_event_loop()
        return self.loop

    def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        value = method(*args)
        if type(value) is CoroutineType or asyncio.isfuture(value):
            value = self._loop().run_until_complete(value)
        return value

    def _fail(self, phase: str, exc: BaseException) -> TaskFailure:
        self.failed = True
        return describe_failure(exc, task=self.task, node=self.node, phase=phase)

    def _unsendable(self, exc: Exception) -> TaskFailure:
        return self._fail("send", unsendable_error(self.node, exc))

    def _skip(self, phase: str, exc: Exception) -> None:
        self.stats.skipped += 1
        self._skip_log(phase, exc)

    def _report(self, report: Report, finished: bool = False) -> Report:
        now = time.perf_counter()
        stats = dataclasses.replace(self.stats, samples=[])
        stats.wall_seconds = now - self.started
        if finished or now - self._samples_sent >= _STATS_INTERVAL:
            stats.samples = list(self.samples)
            self._samples_sent = now
        stats.finished = finished
        report.stats = stats
        return report

    # -- lifecycle --------------------------------------------------------------
    def open(self) -> Report:
        """Open the node; the report carries the failure if ``open()`` raised."""
        report = Report()
        try:
            self._call(self.node.open)
        except Exception as exc:
            report.failure = self._fail("open", exc)
        else:
            self.opened = True
        self.started = time.perf_counter()
        return self._report(report)

    def close(self) -> Report:
        """Close the node (if it opened) and report the task's final stats."""
        report = Report()
        pending, self._pending = self._pending, None
        if pending is not None and self.loop is not None:
            pending.cancel()
            self.loop.run_until_complete(asyncio.gather(pending, return_exceptions=True))
        if self.opened:
            self.opened = False
            try:
                self._call(self.node.close)
            except Exception as exc:
                report.failure = self._fail("close", exc)
        if self.loop is not None:
            self.loop.close()
            self.loop = None
        return self._report(report, finished=True)

    def ping(self) -> int:
        return os.getpid()

    # -- streaming --------------------------------------------------------------
    def _next(self, wait: float | None) -> Any:
        """The producer's next item; ``_NotYet`` if an async ``next()`` still waits after ``wait`` s."""
        pending = self._pending
        if pending is None:
            assert isinstance(self.node, ProducerNode)
            value = self.node.next()
            if type(value) is not CoroutineType:
                return value
            if wait is None:
                return self._loop().run_until_complete(value)
            pending = self._loop().create_task(value)
        loop = self._loop()
        if wait is None:
            loop.run_until_complete(asyncio.wait({pending}))
        elif not pending.done():
            loop.run_until_complete(asyncio.wait({pending}, timeout=wait))
        if not pending.done():
            self._pending = pending
            raise _NotYet
        self._pending = None
        return pending.result()

    def produce(
        self,
        upstream: list[Any] | None,
        limit: int,
        budget: float = 0.005,
        max_bytes: int = 1 << 62,
        parts: int = 1,
    ) -> tuple[Any, ...]:
        """The next batch: own items zipped onto ``upstream`` rows, or alone (``upstream=None``).

        Alone, the batch ends after ``limit`` rows, ``max_bytes`` bytes, ``budget``
        seconds, or when the stream ends; an async ``next()`` that is still waiting
        then stays pending until the next call (or ``close``).

        Returns ``(rows, report)``; with ``parts > 1`` (the last producer in front of
        an ``nb_tasks`` stage) ``(*chunks, report)``: the rows cut into ``parts``
        consecutive chunks of nearly equal size (the first ones one row longer, the
        last ones empty when there are fewer rows than parts), their sizes in
        ``report.parts``, so that the driver can deal them to the stage's workers.
        """
        rows, report = self._produce(upstream, limit, budget, max_bytes)
        if parts <= 1:
            return rows, report
        chunks = _split(rows, parts)
        report.parts = tuple(len(chunk) for chunk in chunks)
        return (*chunks, report)

    def _produce(
        self, upstream: list[Any] | None, limit: int, budget: float, max_bytes: int
    ) -> tuple[list[Any], Report]:
        report = Report()
        rows: list[Any] = []
        if not self.opened or self.failed:
            report.ended = True
            return rows, self._report(report)
        build, blank, sample = self.build, self.blank, self.samples.append
        perf = time.perf_counter
        started = previous = perf()
        produced = nbytes = 0
        value: Any
        if upstream is None:
            while not self.ended and len(rows) < limit:
                try:
                    value = self._next(_IDLE_WAIT if not rows else max(0.0, budget - (perf() - started)))
                except _NotYet:
                    break
                except Exception as exc:
                    if _is_end(exc):
                        self.ended = True
                        break
                    report.failure = self._fail("next", exc)
                    break
                produced += 1
                now = perf()
                sample(now - previous)
                previous = now
                try:
                    rows.append(_fix(build(blank, value)))
                except Exception as exc:
                    report.failure = self._unsendable(exc)
                    break
                nbytes += _size(value)
                if now - started >= budget or nbytes >= max_bytes:
                    break  # a paced source, or big items: hand over what is there
        else:
            for fixed in upstream:
                value = ABSENT
                if not self.ended:
                    try:
                        value = self._next(None)
                        produced += 1
                        now = perf()
                        sample(now - previous)
                        previous = now
                    except Exception as exc:
                        if _is_end(exc):
                            self.ended = True
                        else:
                            report.failure = self._fail("next", exc)
                            break
                try:
                    rows.append(_fix(build(_unfix(fixed), value)))
                except Exception as exc:
                    report.failure = self._unsendable(exc)
                    break
                if value is not ABSENT:
                    nbytes += _size(value)
            self.stats.received += len(upstream)
        stats = self.stats
        stats.processed += produced
        stats.sent += len(rows)
        stats.busy_seconds += perf() - started
        report.rows = len(rows)
        report.nbytes = nbytes
        report.ended = self.ended or self.failed
        return rows, self._report(report)

    def process(self, rows: list[Any]) -> tuple[list[Any], Report]:
        """Run the node on every row whose inputs are all present; return the next stage's rows."""
        report = Report()
        out: list[Any] = []
        if not self.opened or self.failed:
            return out, self._report(report)
        node = self.node
        method: Callable[..., Any]
        if isinstance(node, ProcessorNode):
            method, phase = node.process, "process"
        else:
            assert isinstance(node, ConsumerNode)
            method, phase = node.consume, "consume"
        slots = self.stage.parent_slots
        build, emit, sample = self.build, self.has_next, self.samples.append
        skip = node.on_error == "skip"
        perf = time.perf_counter
        started = previous = perf()
        done = taken = 0
        for fixed in rows:
            row = _unfix(fixed)
            taken += 1
            inputs = tuple(row[s] for s in slots)
            value: Any = ABSENT
            if not any(v is ABSENT for v in inputs):  # not ``in``: it would call == on arrays
                try:
                    value = method(*inputs)
                    if type(value) is CoroutineType or asyncio.isfuture(value):
                        value = self._loop().run_until_complete(value)
                    done += 1
                except Exception as exc:
                    value = ABSENT
                    if not skip:
                        report.failure = self._fail(phase, exc)
                        break
                    self._skip(phase, exc)
                now = perf()
                sample(now - previous)
                previous = now
            if emit:
                try:
                    out.append(_fix(build(row, value)))
                except Exception as exc:
                    report.failure = self._unsendable(exc)
                    break
        stats = self.stats
        stats.received += taken
        stats.processed += done
        stats.sent += len(out)
        stats.busy_seconds += perf() - started
        report.rows = len(out) if emit else taken
        return out, self._report(report)
