"""What runs inside a Ray actor: one task's node, applied to whole batches of rows.

The Ray engine's counterpart of ``task/``: ``produce`` pulls a batch from a
producer (zipped onto the rows of the producers before it), ``process`` runs a
processor or consumer over a batch and returns the rows the next stage reads.
Rows and ``ABSENT`` follow the same model as the local engine (``core.graph``).

Rows travel as ``Rows``: a batch of ``n`` rows held as columns, one list per value
the row carries.  A column the node does not change is passed on as it came (the
same list, its values untouched); the node's own column is its outputs.  A batch
method (``next_batch``, ``process_batch``, ``consume_batch``; ``core.node``) is
called once a batch, the per-item method once a row.

Fixing (docs/design.md#fixing-outputs): a value is fixed when its node returns it,
as on the local engine.  An immutable value stays as it is; anything else becomes
a ``Pickled`` at once (``fix``), and every numpy array of at least ``BIG`` bytes in
it is copied out by itself, the one copy: into a shared slot of the task's own
when the driver has let the task share (``ray_slots``: every later task runs on
its machine), travelling as a ``SlotRef``; else into Ray's object store
(``ray.put``), travelling as an ``ObjectRef``.  A task that reads the value gets
those arrays without a copy (``load``: read-only views of the slot, or of the
object store's shared memory on the same machine), and a node that returns an
array it was given (or a value that holds it) passes the same reference on: an
array crosses a chain of stages on one machine with one copy in all.  Inputs are read-only on Ray: a node that writes
into an array it was given must copy it first (``x = x.copy()``).

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
import io
import logging
import os
import pickle
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import CoroutineType
from typing import Any

from ..core.graph import ABSENT, Stage
from ..core.node import ConsumerNode, ProcessorNode, ProducerNode, batch_method
from .logs import SkipLog
from .ray_slots import SlotLoader, SlotRef, SlotWriter
from .spec import TaskFailure, TaskStats, describe_failure, unsendable_error
from .wire import SCALARS, immutable_size

_ndarray: Any = None
try:
    import numpy

    _ndarray = numpy.ndarray
except ImportError:  # pragma: no cover - Ray requires numpy
    pass

__all__ = ["BIG", "LoadFailure", "Pickled", "Report", "Rows", "TaskRunnerActor", "assemble", "fix", "load"]

log = logging.getLogger("asyncflow.ray")

_STATS_INTERVAL = 0.5  # seconds between the per-item time samples sent to the driver
_IDLE_WAIT = 0.05  # how long an empty produce() call waits for a pending async next()

#: Arrays of at least this many bytes travel by themselves (a shared slot, or Ray's object store).
BIG = 1 << 18
_SAFE: frozenset[type] = frozenset(SCALARS | {str, bytes, type(ABSENT)})
_ABSENT_TYPE = type(ABSENT)
_READ_ONLY_HINT = (
    " (on Ray a node's input arrays are read-only views of shared memory: copy one before writing "
    "into it, e.g. frame = frame.copy())"
)
GAPS = 1  # a column's flag: it may hold ABSENT
FIXED = 2  # a column's flag: it may hold Pickled values


# -- values and rows -----------------------------------------------------------------
class Pickled:
    """A value fixed when its node returned it: its pickle, its big arrays apart as ``ObjectRef``s."""

    __slots__ = ("data", "refs")

    def __init__(self, data: bytes, refs: tuple[Any, ...] = ()) -> None:
        self.data = data
        self.refs = refs

    def __reduce__(self) -> tuple[Any, ...]:
        return (Pickled, (self.data, self.refs))


#: id(array) -> (array, its ObjectRef): the arrays a call was given, so that one it
#: returns goes on under the same ref.  Kept for one call only (ids are reused).
Known = dict[int, tuple[Any, Any]]


def _ray() -> Any:
    """The ``ray`` module if this process is connected to Ray, else ``None`` (arrays then stay in band)."""
    try:
        import ray
    except ImportError:  # pragma: no cover - the Ray engine needs Ray
        return None
    return ray if ray.is_initialized() else None


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, refs: list[Any], known: Known | None, slots: SlotWriter | None) -> None:
        super().__init__(file, protocol=5)
        self.refs = refs
        self.known = known
        self.slots = slots

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is not _ndarray or obj.nbytes < BIG or obj.dtype.hasobject:
            return None
        entry = self.known.get(id(obj)) if self.known else None
        if entry is not None and entry[0] is obj:
            ref = entry[1]  # an array this call was given: the same object in the store (or slot)
        else:
            ref = self.slots.put(obj) if self.slots is not None else None  # the copy that fixes it
            if ref is None:
                ray = _ray()
                if ray is None:
                    return None
                ref = ray.put(obj)  # the copy that fixes it, in the object store
        self.refs.append(ref)
        return len(self.refs) - 1


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, arrays: list[Any]) -> None:
        super().__init__(file)
        self.arrays = arrays

    def persistent_load(self, pid: Any) -> Any:
        return self.arrays[pid]


def fix(value: Any, known: Known | None = None, slots: SlotWriter | None = None) -> Any:
    """``value`` itself if nothing in it can change, else a ``Pickled``: big arrays into ``slots``
    (a task that shares, ``ray_slots``) or the object store."""
    if type(value) in _SAFE or immutable_size((value,)) >= 0:
        return value
    refs: list[Any] = []
    buffer = io.BytesIO()
    _Pickler(buffer, refs, known, slots).dump(value)
    return Pickled(buffer.getvalue(), tuple(refs))


def load(values: list[Any], known: Known | None = None, slots: SlotLoader | None = None) -> list[Any]:
    """``values`` with every ``Pickled`` read back: its arrays mapped from their slots (``slots`` counts
    the views), or fetched from the object store (one ``ray.get``)."""
    refs = [ref for v in values if type(v) is Pickled for ref in v.refs]
    arrays: list[Any] = []
    if refs:
        stored = [ref for ref in refs if type(ref) is not SlotRef]
        if stored:
            ray = _ray()
            assert ray is not None, "arrays in Ray's object store are read in a Ray process"
            fetched = iter(ray.get(stored))
        for ref in refs:
            if type(ref) is SlotRef:
                assert slots is not None, "arrays in slots are read with a SlotLoader"
                arrays.append(slots.load(ref))
            else:
                arrays.append(next(fetched))
        if known is not None:
            for array, ref in zip(arrays, refs, strict=True):
                known[id(array)] = (array, ref)
    out: list[Any] = []
    i = 0
    for value in values:
        if type(value) is Pickled:
            k = len(value.refs)
            value = _Unpickler(io.BytesIO(value.data), arrays[i : i + k]).load()
            i += k
        out.append(value)
    return out


def _fix_all(values: list[Any], known: Known | None, slots: SlotWriter | None) -> tuple[list[Any], int]:
    """``values`` fixed (a new list only if one had to change) and the column's flags."""
    kinds = set(map(type, values))
    if kinds <= _SAFE:
        return values, GAPS if _ABSENT_TYPE in kinds else 0
    fixed = [v if type(v) in _SAFE else fix(v, known, slots) for v in values]
    return fixed, FIXED | (GAPS if _ABSENT_TYPE in kinds else 0)


class Rows:
    """A batch of ``n`` rows as columns; ``flags[j]``: ``GAPS`` / ``FIXED`` for column ``j``."""

    __slots__ = ("cols", "flags", "n")

    def __init__(self, n: int, cols: tuple[list[Any], ...] = (), flags: tuple[int, ...] = ()) -> None:
        self.n = n
        self.cols = cols
        self.flags = flags

    def __reduce__(self) -> tuple[Any, ...]:
        return (Rows, (self.n, self.cols, self.flags))

    def __len__(self) -> int:
        return self.n

    def head(self, n: int) -> Rows:
        """The first ``n`` rows."""
        return self if n >= self.n else Rows(n, tuple(c[:n] for c in self.cols), self.flags)

    def split(self, parts: int) -> list[Rows]:
        """Cut into ``parts`` consecutive batches whose sizes differ by one at most (the first ones longer)."""
        size, extra = divmod(self.n, parts)
        out: list[Rows] = []
        start = 0
        for i in range(parts):
            end = start + size + (1 if i < extra else 0)
            out.append(Rows(end - start, tuple(c[start:end] for c in self.cols), self.flags))
            start = end
        return out


def assemble(
    sources: tuple[int, ...], n: int, own: list[Any] | None, own_flags: int, upstream: Rows | None
) -> Rows:
    """The outgoing batch of a stage: its ``out_sources`` picked from ``upstream`` and its own column."""
    cols: list[list[Any]] = []
    flags: list[int] = []
    for s in sources:
        if s < 0:
            assert own is not None
            cols.append(own)
            flags.append(own_flags)
        elif upstream is None:  # the producers before this one have ended
            cols.append([ABSENT] * n)
            flags.append(GAPS)
        else:
            cols.append(upstream.cols[s] if upstream.n == n else upstream.cols[s][:n])
            flags.append(upstream.flags[s])
    return Rows(n, tuple(cols), tuple(flags))


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


def _is_end(exc: BaseException) -> bool:
    """Whether an exception from ``next()`` ends the producer's stream (rather than failing it)."""
    if isinstance(exc, (StopIteration, StopAsyncIteration)):
        return True
    # ``raise StopIteration`` inside a coroutine reaches us as a RuntimeError.
    return isinstance(exc, RuntimeError) and isinstance(exc.__cause__, (StopIteration, StopAsyncIteration))


class _NotYet(Exception):
    """Internal: an async ``next()`` is still waiting; the call returns what it has."""


# -- reports ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadFailure:
    """The task's node could not be unpickled in the actor (its class's module is missing there)."""

    summary: str  # "ModuleNotFoundError: No module named 'mynodes'"
    module: str | None  # the module that could not be imported, if known
    traceback: str


@dataclass
class Report:
    """What one actor call tells the driver besides the rows it returns."""

    rows: int = 0  # rows returned
    nbytes: int = 0  # estimated size of the values this task added (producers)
    ended: bool = False  # a producer's own stream has ended
    parts: tuple[int, ...] = ()  # produce(parts > 1): the rows in each part, in order
    failure: TaskFailure | None = None
    stats: TaskStats | None = None
    load: LoadFailure | None = None  # open(): the node could not be loaded
    where: tuple[str, str, int] | None = None  # open(): (Ray node id, node IP, pid) of the actor
    # shared slots (``ray_slots``): those this task filled, and the views of others' it made and let go
    made: tuple[int, ...] = ()
    loaded: tuple[tuple[int, int], ...] = ()
    released: tuple[tuple[int, int], ...] = ()


def _load_failure(exc: BaseException) -> LoadFailure:
    module = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    return LoadFailure(f"{type(exc).__name__}: {exc}", module, "".join(traceback.format_exception(exc)))


def _where() -> tuple[str, str, int]:
    ray = _ray()
    if ray is None:
        return "", "", os.getpid()
    try:
        return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address(), os.getpid()
    except Exception:
        return "", "", os.getpid()


# -- the actor -------------------------------------------------------------------------
class TaskRunnerActor:
    """One task of the flow (wrapped with ``ray.remote`` by the scheduler)."""

    def __init__(
        self,
        stage: Stage | bytes,
        task: str,
        device: str | None,
        has_next: bool = True,
        log_level: int | None = None,
    ) -> None:
        """``stage``: the task's stage, or its pickle (the scheduler's way: a node whose class the
        worker cannot import then fails in ``open()`` with a ``LoadFailure``, not with a dead actor)."""
        self.task = task
        if device is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = device
        if log_level is not None:
            logging.getLogger("asyncflow").setLevel(log_level)
        self.load_failure: LoadFailure | None = None
        if isinstance(stage, bytes):
            try:
                stage = pickle.loads(stage)
            except Exception as exc:
                self.load_failure = _load_failure(exc)
                stage = Stage(0, ConsumerNode(name=task), (), (), (), ())  # a stand-in that does nothing
        assert isinstance(stage, Stage)
        self.stage = stage
        node = self.node = stage.node
        self.has_next = has_next
        self.sources = stage.out_sources
        self.slots = stage.parent_slots
        self.emit = has_next and -1 in self.sources  # the node's own values go on
        self.method: Callable[..., Any] | None = None
        self.phase = "next"
        if isinstance(node, ProducerNode):
            self.per_batch = batch_method(node, "next")
        elif isinstance(node, ProcessorNode):
            self.method, self.phase = node.process, "process"
            self.per_batch = batch_method(node, "process")
        else:
            assert isinstance(node, ConsumerNode)
            self.method, self.phase = node.consume, "consume"
            self.per_batch = batch_method(node, "consume")
        self.stats = TaskStats()
        self.samples: deque[float] = deque(maxlen=256)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.opened = False
        self.failed = False
        self.ended = False
        self.started = time.perf_counter()
        self.known: Known = {}
        self.writer: SlotWriter | None = None  # share(): big arrays go into slots of this task's own
        self.loader = SlotLoader()  # views of other tasks' slots
        self._samples_sent = 0.0
        self._pending: asyncio.Task[Any] | None = None  # an async next() still waiting
        self._waiting: asyncio.Task[Any] | None = None  # the async next() a call is waiting for now
        self.interrupted = False  # interrupt(): the flow stops, the producer's stream ends
        self._skip_log = SkipLog(log, self.node, self.task)

    def __repr__(self) -> str:  # Ray prefixes the actor's log lines with it (even when __init__ failed)
        return f"asyncflow {getattr(self, 'task', '?')}"

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
        failure = describe_failure(exc, task=self.task, node=self.node, phase=phase)
        if isinstance(exc, ValueError) and "read-only" in str(exc):
            failure = dataclasses.replace(failure, summary=failure.summary + _READ_ONLY_HINT)
        return failure

    def _unsendable(self, exc: Exception) -> TaskFailure:
        return self._fail("send", unsendable_error(self.node, exc))

    def _skip(self, phase: str, exc: Exception) -> None:
        self.stats.skipped += 1
        self._skip_log(phase, exc)

    def _settle(self, report: Report) -> Report:
        """Add the slots filled and the views made and let go since the last report (``ray_slots``)."""
        if self.writer is not None and self.writer.made:
            report.made = self.writer.take_made()
        if self.loader.loaded or self.loader.released:
            report.loaded, report.released = self.loader.take()
        return report

    def _free(self, free: tuple[int, ...]) -> None:
        if free and self.writer is not None:
            self.writer.free(free)

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
        """Open the node; the report carries the failure if ``open()`` raised, and where the actor runs."""
        report = Report(where=_where())
        if self.load_failure is not None:
            self.failed = True
            report.load = self.load_failure
            return self._report(report)
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
        self._settle(report)
        if self.writer is not None:
            self.writer.close()
        self.loader.close()
        return self._report(report, finished=True)

    def ping(self) -> int:
        return os.getpid()

    def drop_slots(self) -> None:
        """The actor is about to be killed: unlink its slots' names now (called in the "control"
        concurrency group, while a call may still be running; views elsewhere stay valid)."""
        writer = self.writer
        if writer is not None:
            writer.unlink_all()

    def share(self, owner: int, budget: int) -> None:
        """Every task after this one runs on its machine: big arrays go into shared slots from now on
        (``ray_slots``), ``budget`` bytes of them at most; ``owner``: this task's number in the flow."""
        if self.writer is None:
            self.writer = SlotWriter(owner, budget)

    def interrupt(self) -> None:
        """The flow stops: an async ``next()`` that waits is cancelled and the stream ends there.

        Called in the actor's "control" concurrency group, a thread of its own, while a
        ``produce`` call may be running (a synchronous ``next()`` is not interrupted: the
        stream ends once it returns).
        """
        self.interrupted = True
        loop = self.loop
        for pending in (self._waiting, self._pending):
            if pending is not None and loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(pending.cancel)
                except RuntimeError:
                    pass  # the loop closed meanwhile

    # -- producing ---------------------------------------------------------------
    def _next(self, wait: float | None, most: int) -> Any:
        """``next()`` (or ``next_batch(most)``); ``_NotYet`` if an async one still waits after ``wait`` s."""
        pending = self._pending
        if pending is None:
            assert isinstance(self.node, ProducerNode)
            value = self.node.next() if self.per_batch is None else self.per_batch(most)
            if type(value) is not CoroutineType:
                return value
            pending = self._loop().create_task(value)
        loop = self._loop()
        self._waiting = pending
        try:
            if self.interrupted:
                pending.cancel()  # interrupt() came before the task was there to cancel
            if wait is None:
                loop.run_until_complete(asyncio.wait({pending}))
            elif not pending.done():
                loop.run_until_complete(asyncio.wait({pending}, timeout=wait))
        finally:
            self._waiting = None
        if not pending.done():
            self._pending = pending
            raise _NotYet
        self._pending = None
        return pending.result()

    def _take(self, wait: float | None, most: int) -> list[Any] | None:
        """The next items (one, or a ``next_batch``'s), fixed; ``None`` at the end of the stream.

        Raises ``_NotYet``, or the node's exception (the caller reports it).
        """
        if self.interrupted:
            return None
        try:
            got = self._next(wait, most)
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
            return None
        except Exception as exc:
            if _is_end(exc):
                return None
            raise
        if self.per_batch is None:
            return [got]
        if type(got) is not list:
            got = list(got)
        if not got:
            return None
        if len(got) > most:
            raise ValueError(f"next_batch({most}) returned {len(got)} items")
        return got

    def produce(
        self,
        upstream: Rows | None,
        limit: int,
        budget: float = 0.005,
        max_bytes: int = 1 << 62,
        parts: int = 1,
        free: tuple[int, ...] = (),
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
        ``free``: this task's slots that nothing reads any more.
        """
        self._free(free)
        rows, report = self._produce(upstream, limit, budget, max_bytes)
        self._settle(report)
        if parts <= 1:
            return rows, report
        chunks = rows.split(parts)
        report.parts = tuple(chunk.n for chunk in chunks)
        return (*chunks, report)

    def _produce(self, upstream: Rows | None, limit: int, budget: float, max_bytes: int) -> tuple[Rows, Report]:
        report = Report()
        if not self.opened or self.failed:
            report.ended = True
            return Rows(0, tuple([] for _ in self.sources), tuple(0 for _ in self.sources)), self._report(report)
        own: list[Any] = []
        perf = time.perf_counter
        started = previous = perf()
        nbytes = 0
        # Alone: up to ``limit`` rows within the budget; zipped: one item for each upstream row.
        want = limit if upstream is None else upstream.n
        while not self.ended and len(own) < want:
            if upstream is None:
                wait: float | None = _IDLE_WAIT if not own else max(0.0, budget - (perf() - started))
            else:
                wait = None
            try:
                got = self._take(wait, want - len(own))
            except _NotYet:
                break
            except Exception as exc:
                report.failure = self._fail("next", exc)
                break
            if got is None:
                self.ended = True
                break
            now = perf()
            self.samples.append((now - previous) / len(got))
            previous = now
            kinds = set(map(type, got))
            nbytes += 16 * len(got) if kinds <= SCALARS else sum(map(_size, got))
            try:
                if not kinds <= _SAFE:
                    got = [v if type(v) in _SAFE else fix(v, None, self.writer) for v in got]
            except Exception as exc:
                report.failure = self._unsendable(exc)
                break
            own.extend(got)
            if upstream is None and (now - started >= budget or nbytes >= max_bytes):
                break  # a paced source, or big items: hand over what is there
        produced = len(own)
        n = len(own)
        if upstream is not None:
            self.stats.received += upstream.n
            if report.failure is None:
                n = upstream.n  # past the end of this producer's stream: ABSENT
                own.extend([ABSENT] * (n - len(own)))
        rows = assemble(self.sources, n, own, _flags_of(own), upstream)
        stats = self.stats
        stats.processed += produced
        stats.sent += n
        stats.busy_seconds += perf() - started
        report.rows = n
        report.nbytes = nbytes
        report.ended = self.ended or self.failed
        return rows, self._report(report)

    # -- processing and consuming -------------------------------------------------------
    def process(self, rows: Rows, free: tuple[int, ...] = ()) -> tuple[Rows, Report]:
        """Run the node on every row whose inputs are all present; return the next stage's rows.

        ``free``: this task's slots that nothing reads any more."""
        self._free(free)
        report = Report()
        if not self.opened or self.failed:
            return Rows(0), self._settle(self._report(report))
        self.known.clear()
        try:
            result, report = self._process(rows, report)
        finally:
            self.known.clear()
        return result, self._settle(report)  # after the inputs are gone: their views count as let go

    def _process(self, rows: Rows, report: Report) -> tuple[Rows, Report]:
        n, cols, flags = rows.n, rows.cols, rows.flags
        node = self.node
        skip = node.on_error == "skip"
        passed = set(self.sources)
        inputs: list[list[Any]] = []
        lend: list[bool] = []  # whether a batch method may have the list itself (nothing else reads it)
        for j in self.slots:
            col = cols[j]
            if flags[j] & FIXED:
                try:
                    col = load(col, self.known, self.loader)  # a fresh list
                except Exception as exc:  # e.g. a value whose class this worker cannot import
                    report.failure = self._fail("receive", exc)
                    return Rows(0), self._report(report)
                lend.append(not skip)
            else:
                lend.append(not skip and j not in passed and self.slots.count(j) == 1)
            inputs.append(col)
        present: list[int] | None = None
        if any(flags[j] & GAPS for j in self.slots) and any(_ABSENT_TYPE in set(map(type, c)) for c in inputs):
            present = [k for k in range(n) if all(c[k] is not ABSENT for c in inputs)]
        perf = time.perf_counter
        started = perf()
        out: list[Any] | None = None
        taken = n
        done = 0
        if self.per_batch is not None:
            try:
                out, done = self._run_batch(inputs, lend, present, n, report, skip)
            except Exception as exc:  # its outputs could not be fixed
                report.failure = self._unsendable(exc)
                out, taken = None, 0
            if out is None and report.failure is None:  # skip: find the failing items one at a time
                out, done, taken = self._run_items(inputs, present, n, report, skip)
        else:
            out, done, taken = self._run_items(inputs, present, n, report, skip)
        if report.failure is not None and out is None:
            taken = 0  # a batch method that raised: the batch is lost with the flow
        stats = self.stats
        stats.received += taken
        stats.processed += done
        stats.busy_seconds += perf() - started
        if not self.has_next:
            report.rows = taken
            return Rows(0), self._report(report)
        own = None
        if self.emit:
            own = [] if out is None else out if taken == n else out[:taken]
        result = assemble(self.sources, taken, own, _flags_of(own) if own is not None else 0, rows.head(taken))
        stats.sent += taken
        report.rows = taken
        return result, self._report(report)

    def _run_batch(
        self, inputs: list[list[Any]], lend: list[bool], present: list[int] | None, n: int, report: Report, skip: bool
    ) -> tuple[list[Any] | None, int]:
        """The batch method once over the rows whose inputs are there; ``(fixed outputs, done)``.

        ``(None, 0)`` when it raised: with ``skip``, the caller runs the rows one at a
        time; else the failure is in ``report``.  Raises if an output cannot be fixed.
        """
        assert self.per_batch is not None
        if present is None:
            args = [c if mine else list(c) for c, mine in zip(inputs, lend, strict=True)]
        else:
            args = [[c[k] for k in present] for c in inputs]
        m = len(args[0]) if args else n
        started = time.perf_counter()
        try:
            values = self._call(self.per_batch, *args) if m else []
            if self.emit:
                if type(values) is not list:
                    values = list(values)
                if len(values) != m:
                    raise ValueError(f"{self.phase}_batch() returned {len(values)} items for {m} inputs")
        except Exception as exc:
            if not skip:
                report.failure = self._fail(self.phase, exc)
            return None, 0
        if m:
            self.samples.append((time.perf_counter() - started) / m)
        if not self.emit:
            return [], m
        values = _fix_all(values, self.known, self.writer)[0]  # now: the items must be distinct, the list may be reused
        if present is None:
            return values, m
        out: list[Any] = [ABSENT] * n
        for k, value in zip(present, values, strict=True):
            out[k] = value
        return out, m

    def _run_items(
        self, inputs: list[list[Any]], present: list[int] | None, n: int, report: Report, skip: bool
    ) -> tuple[list[Any], int, int]:
        """The per-item method on each row whose inputs are there; ``(outputs, done, rows taken)``.

        After a failure (not skipped) only the rows before the failing one are taken.
        """
        method = self.method
        assert method is not None
        out: list[Any] = [ABSENT] * n
        emit, sample, perf = self.emit, self.samples.append, time.perf_counter
        done = 0
        previous = perf()
        rows = range(n) if present is None else present
        single = inputs[0] if len(inputs) == 1 else None
        for k in rows:
            try:
                value = method(single[k]) if single is not None else method(*[c[k] for c in inputs])
                if type(value) is CoroutineType or asyncio.isfuture(value):
                    value = self._loop().run_until_complete(value)
                done += 1
            except Exception as exc:
                if not skip:
                    report.failure = self._fail(self.phase, exc)
                    return out, done, k
                self._skip(self.phase, exc)
                continue
            if emit:
                if type(value) not in _SAFE:
                    try:
                        value = fix(value, self.known, self.writer)  # now: the node may reuse what it returned
                    except Exception as exc:
                        report.failure = self._unsendable(exc)
                        return out, done, k
                out[k] = value
            now = perf()
            sample(now - previous)
            previous = now
        return out, done, n


def _flags_of(values: list[Any]) -> int:
    """The flags of a column whose values are fixed already."""
    kinds = set(map(type, values))
    return (FIXED if Pickled in kinds else 0) | (GAPS if _ABSENT_TYPE in kinds else 0)
