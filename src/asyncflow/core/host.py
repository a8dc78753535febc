"""Nodes that connect a flow to the application that runs it.

``ResultsConsumer`` hands what it receives back to the host, which reads it with
``async for item in flow.results(node)`` (a ``Results``); ``FeedProducer`` emits
what the host gives it with ``await node.put(x)`` and ends at ``await node.end()``
(``FeedClosedError`` once it takes no more).  Both keep backpressure: a reader
that does not pull holds the flow back, and ``put`` waits while the flow is full.
The engine connects them to the parent process with a channel of their own (the
``host_link`` of their task); ``ResultsTap`` is the parent's end of a
``ResultsConsumer``'s, shared by its readers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from .constants import STOP_FLOW
from .node import ConsumerNode, ProducerNode

__all__ = ["FeedClosedError", "FeedProducer", "HostChannel", "Results", "ResultsConsumer", "ResultsTap"]

_NOTHING: Any = object()  # ResultsTap.take: no item has come yet
_END: Any = object()  # ResultsTap.take: the stream has ended


class FeedClosedError(RuntimeError):
    """``FeedProducer.put()`` refused an item: the feed takes no more.

    Raised after ``end()``, once the flow is stopping (``flow.stop()``, a failed
    node, a cancelled ``run()``), when the flow ended before taking the item, and
    while no run is in progress.  The item was not accepted; every item whose
    ``put()`` returned is delivered, unless the flow is killed or fails.
    """


class HostChannel:
    """What a task of a host node is given in its process: an async ``send`` or ``recv``."""

    async def send(self, row: tuple[Any, ...]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def recv(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


class ResultsConsumer(ConsumerNode):
    """Sends every item to the host: ``async for item in flow.results(this_node)``.

    With several parents an item is the tuple of their inputs.  Until a reader
    comes, items wait (with backpressure); once every reader has left (see
    ``Results``), the rest of the items are discarded so the flow can end.
    """

    _host: HostChannel | None = None

    async def consume(self, *inputs: Any) -> None:
        assert self._host is not None, "ResultsConsumer runs only inside a flow"
        await self._host.send((inputs[0] if len(inputs) == 1 else inputs,))

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_host", None)
        return state


class FeedProducer(ProducerNode):
    """Emits what the host puts: ``await node.put(x)``; ``await node.end()`` ends the stream.

    ``put`` waits until the flow is running and has room (backpressure).  The flow
    ends once every producer has ended, so a flow fed by the host ends after
    ``end()``.

    When the flow stops (``flow.stop()``, a failed node, a cancelled ``run()``), the
    feed ends behind the items ``put`` has accepted, which the flow still emits
    and delivers: nothing whose ``put`` returned is lost.  A ``put`` already
    waiting for room then still completes; any later one raises ``FeedClosedError``.
    ``stop()`` does not wait, so it takes effect a moment after the call.
    """

    _host: HostChannel | None = None
    _parent_side: Any = None  # the parent's sender, while the flow runs
    _attached: asyncio.Event | None = None
    # One put() (or the end of the stream) at a time, in the order they came: the
    # sender wakes one waiter.  A flag and a line, not an asyncio.Lock: put() is hot.
    _busy = False
    _line: deque[asyncio.Future[None]] | None = None
    _ended = False  # end() was called
    _stopping = False  # the flow is stopping: put() takes no more items
    _stream_ended = False  # STOP_FLOW is written to the parent's sender
    _closing: asyncio.Task[None] | None = None

    async def next(self) -> Any:
        assert self._host is not None, "FeedProducer runs only inside a flow"
        row = await self._host.recv()
        if row is None:
            raise StopAsyncIteration
        return row[0]

    def _attach(self, sender: Any) -> None:
        self._parent_side = sender
        self._ended = self._stopping = self._stream_ended = False
        self._event().set()

    def _detach(self) -> None:
        # Set, and it stays set: a put() waiting for a run that ended (or never
        # started: stop() before run()) fails, and so does one after the run.
        self._parent_side = None
        self._event().set()

    def _stop_feed(self) -> None:
        """The flow is stopping: refuse new items, end the stream after the accepted ones."""
        if not self._stopping:
            self._stopping = True
            self._closing = asyncio.ensure_future(self._end_stream())

    async def _end_stream(self) -> None:
        if self._busy or self._line:
            await self._wait_turn()  # after the put() in progress, if any: its item was accepted
        else:
            self._busy = True
        try:
            sender = self._parent_side
            if sender is not None and not self._stream_ended:
                self._stream_ended = True
                await sender.send_stop()
        finally:
            self._pass_turn()

    async def _wait_turn(self) -> None:
        """Wait until the put() (or end) before this one is done; the turn is then ours."""
        if self._line is None:
            self._line = deque()
        turn = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._pass_turn()  # handed to us as we were cancelled: hand it on
            raise

    def _pass_turn(self) -> None:
        line = self._line
        while line:
            turn = line.popleft()
            if not turn.done():
                turn.set_result(None)  # still busy: the turn is theirs now
                return
        self._busy = False

    def _refusal(self) -> str | None:
        """Why put() refuses an item now (``None``: it takes it)."""
        if self._parent_side is None:
            return "the flow is not running"
        if self._ended:
            return "put() after end()"
        if self._stopping:
            return "the flow is stopping: it takes no more items"
        return None

    def _event(self) -> asyncio.Event:
        if self._attached is None:
            self._attached = asyncio.Event()
        return self._attached

    async def put(self, item: Any) -> None:
        """Emit ``item``: waits for the flow to start and to have room, then accepts it.

        Once ``put`` has returned, the item is delivered, even if the flow is stopped
        meanwhile (unless it is killed or fails).  Raises ``FeedClosedError`` (a
        ``RuntimeError``) when the feed takes no more items: after ``end()``, once
        the flow is stopping, or when no run is in progress.  Calls from several
        coroutines are taken one at a time, in the order they came.
        """
        event = self._attached
        if event is None or not event.is_set():
            await self._event().wait()
        open_ = self._parent_side is not None and not self._ended and not self._stopping
        refused = None if open_ else self._refusal()
        if refused is None:
            if self._busy or self._line:
                await self._wait_turn()
                refused = self._refusal()  # the state may have changed meanwhile
            else:
                self._busy = True
            try:
                if refused is None:
                    sender = self._parent_side
                    await sender.send_many([sender.freeze((item,))])
                    return
            except Exception as exc:
                from ..engine.channel import BrokenChannelError

                if not isinstance(exc, BrokenChannelError):
                    raise
                refused = "the flow ended before it took the item"
            finally:
                if self._line:
                    self._pass_turn()
                else:
                    self._busy = False
        raise FeedClosedError(f"{self.describe()}: {refused}")

    async def end(self) -> None:
        """End the stream (idempotent; nothing to do once the flow is stopping or over)."""
        await self._event().wait()
        if self._parent_side is not None and not self._ended:
            self._ended = True
            await self._end_stream()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        for key in (
            *("_host", "_parent_side", "_attached", "_busy", "_line"),
            *("_ended", "_stopping", "_stream_ended", "_closing"),
        ):
            state.pop(key, None)
        return state


class ResultsTap:
    """The parent's end of one ResultsConsumer's channel in one run, shared by its readers.

    Readers take items one at a time, each item going to one of them; one reader
    at a time waits on the channel (its receiver wakes one waiter).  While a reader
    is attached the channel keeps its backpressure; once the last one has left, a
    task takes and drops what still comes so that the flow can end, until a
    reader attaches again.
    """

    def __init__(self, receiver: Any, run: Any) -> None:
        from ..engine.channel import EMPTY as _EMPTY

        self.receiver = receiver
        self.run = run  # the scheduler: its ``host_closed`` says the run is over
        self._empty = _EMPTY
        self._loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self._readers = 0
        self._done = False
        self._discarding: asyncio.Task[None] | None = None

    @property
    def ended(self) -> bool:
        """Whether a reader (or the discarding) has seen the end of the stream."""
        return self._done

    def take(self) -> Any:
        """The next item if one is here; ``_NOTHING`` if none yet; ``_END`` once the stream has ended."""
        if self._done:
            return _END
        if getattr(self.run, "host_closed", False):
            self._done = True  # the run is over (rows a killed run left are not read)
            return _END
        row = self.receiver.recv_nowait()
        if row is self._empty:
            return _NOTHING
        if row is STOP_FLOW:
            self._done = True
            return _END
        return row[0]

    async def get(self) -> Any:
        """The next item, or ``_END``."""
        while True:
            item = self.take()
            if item is not _NOTHING:
                return item
            async with self._lock:
                item = self.take()
                if item is not _NOTHING:
                    return item
                await self.receiver.wait()

    def attach(self) -> None:
        """A reader is here: items wait for it (backpressure); stop dropping them."""
        self._readers += 1
        if self._discarding is not None:
            self._discarding.cancel()  # rows are taken between awaits: none is lost
            self._discarding = None

    def detach(self) -> None:
        """A reader has left; once none is left, drop what still comes so that the flow can end."""
        self._readers -= 1
        if self._readers <= 0 and not self._done and self._discarding is None:
            self._discarding = self._loop.create_task(self._discard())

    async def _discard(self) -> None:
        while True:
            try:
                if await self.get() is _END:
                    return
            except Exception:
                continue  # a row that could not be read back: dropped as well


class Results(AsyncIterator[Any]):
    """What ``flow.results(node)`` returns: the items a ``ResultsConsumer`` receives.

    It reads one run: the run in progress; between runs, the latest one if it
    ended after ``results()`` was called or if no reader has seen its end yet (it
    ended at once: ``stop()`` before ``run()``, a failure at start); else the next
    run to start (``RuntimeError`` if none has started within ``start_timeout``
    seconds of the first pull; ``None``: no limit).  It yields that run's items in
    order, with backpressure, and ends when the run ends, however it ends: at once,
    with no items, for a run that ended before it started its tasks.  It never
    raises the run's error: ``await run`` does.

    A reader is attached while an ``async for`` loop over this object runs: each
    loop gets its own cursor, which the loop alone holds, so leaving the loop
    (``break``, ``return``, an exception) ends it at once, even when this object is
    kept in a variable.  Pulling by hand (``await anext(results)``) attaches until
    ``aclose()`` (or ``async with flow.results(node) as results:``), the end of the
    stream, or until the object is garbage.  Items wait (backpressure) until a
    reader attaches; while none is attached after one was, they are discarded so
    the flow can finish; a reader that attaches again (a new loop over the same
    object goes on where the last one stopped) gets the items that come from then
    on.  Several readers at once (loops in several coroutines, or several
    ``results()`` of one node) share the items: each item goes to one of them, and
    all of them end when the stream ends.
    """

    def __init__(self, flow: Any, node: ResultsConsumer, first_run: int, start_timeout: float | None) -> None:
        self._flow = flow
        self._node = node
        self._first_run = first_run  # the number of the first run it may read (Flow._runs)
        self._start_timeout = start_timeout
        self._tap: ResultsTap | None = None
        self._holders = 0  # open cursors, plus one once pulled by hand
        self._by_hand = False
        self._attached = False  # counted as a reader by the tap
        self._over = False  # the stream has ended, or aclose() was called

    def __aiter__(self) -> AsyncIterator[Any]:
        return _Cursor(self)

    async def __anext__(self) -> Any:
        if not self._by_hand:
            self._by_hand = True
            self._hold()
        return await self._next()

    async def aclose(self) -> None:
        """Stop reading: items not read are then discarded (unless another reader takes them)."""
        self._over = True
        self._release()

    async def __aenter__(self) -> Results:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        tap = self._tap
        if self._attached and tap is not None:
            self._attached = False
            _soon(tap, tap.detach)

    async def _next(self) -> Any:
        if self._over:
            raise StopAsyncIteration
        tap = self._tap
        if tap is None:
            tap = await self._bind()
            if tap is None:  # the run ended before it started its tasks
                self._over = True
                raise StopAsyncIteration
        item = tap.take()
        if item is _NOTHING:
            item = await tap.get()
        if item is _END:
            self._over = True
            self._release()
            raise StopAsyncIteration
        return item

    async def _bind(self) -> ResultsTap | None:
        tap = await self._flow._results_tap(self._node, self._first_run, self._start_timeout)
        if self._tap is None and tap is not None:
            self._tap = tap
            if self._holders and not self._over:
                self._attached = True
                tap.attach()
        return self._tap

    def _hold(self) -> None:
        self._holders += 1
        if self._tap is not None and not self._attached and not self._over:
            self._attached = True
            self._tap.attach()

    def _unhold(self) -> None:
        self._holders -= 1
        if self._holders <= 0 and self._attached and self._tap is not None:
            # A moment later: a loop that follows at once (no await between) goes on
            # where this one stopped, with nothing discarded in between.
            _soon(self._tap, self._release_if_idle)

    def _release_if_idle(self) -> None:
        if self._holders <= 0:
            self._release()

    def _release(self) -> None:
        if self._attached and self._tap is not None:
            self._attached = False
            self._tap.detach()


class _Cursor(AsyncIterator[Any]):
    """One ``async for`` loop over a ``Results``: held by the loop alone, so it goes when the loop is left."""

    def __init__(self, results: Results) -> None:
        self._results = results
        self._open = True
        results._hold()

    def __aiter__(self) -> _Cursor:
        return self

    async def __anext__(self) -> Any:
        results = self._results
        tap = results._tap
        if tap is not None and not results._over:
            item = tap.take()  # the common case, without another coroutine
            if item is not _NOTHING and item is not _END:
                return item
        try:
            return await results._next()
        except StopAsyncIteration:
            self._leave()
            raise

    async def aclose(self) -> None:
        """Leave this loop (the ``Results`` stays usable)."""
        self._leave()

    def _leave(self) -> None:
        if self._open:
            self._open = False
            self._results._unhold()

    def __del__(self) -> None:
        try:
            self._leave()
        except Exception:
            pass  # the interpreter is shutting down


def _soon(tap: ResultsTap, callback: Any) -> None:
    """Call ``callback`` on the tap's loop (from a finalizer: any thread, any moment)."""
    try:
        tap._loop.call_soon_threadsafe(callback)
    except RuntimeError:
        pass  # the loop has closed: the run is long over
