"""``Flow``: the facade a user builds, runs and stops.

``Flow(producers, consumers)`` checks the graph at once and routes its rows
(``core.graph.route``); ``await flow.run()`` hands the stages to the engine, which runs each task in its own
process.  ``flow.stop()`` may be called from any coroutine, thread or signal
handler.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from .constants import FlowType
from .graph import Stage, check_graph, linearize, route
from .host import Results, ResultsConsumer, ResultsTap
from .node import ConsumerNode, Node, ProducerNode
from .options import FlowOptions, parse_options

__all__ = ["Flow", "ProgressDisplay", "set_progress_display"]

log = logging.getLogger("asyncflow")

_DROP_WORDS = {
    "full": "replaced by newer items while it was busy",
    "stale": "older than max_age",
    "order": "finished after a newer item had gone on",
}


def _flow_type(value: object) -> FlowType:
    try:
        return FlowType(value)  # type: ignore[arg-type]  # validated right here
    except ValueError:
        raise ValueError(
            f"Flow: unknown flow_type {value!r}; use BATCH or REALTIME (or 'batch' / 'realtime')"
        ) from None


#: Shows a run while it goes (``flow_options["progress"]``): called with the flow and the
#: engine's ``run()`` coroutine, returns what that returns.  The package sets it to the
#: monitor's live display (``asyncflow/__init__.py``), so the core never imports its
#: displays: the monitor, the runner and the CLI sit on top of the core, not beside it.
ProgressDisplay = Callable[["Flow", Coroutine[Any, Any, dict[str, Any]]], Awaitable[dict[str, Any]]]
_progress_display: ProgressDisplay | None = None


def set_progress_display(display: ProgressDisplay | None) -> None:
    """Install what ``flow_options["progress"]`` shows (``None``: nothing)."""
    global _progress_display
    _progress_display = display


class Flow:
    """A checked graph of producers, processors and consumers, ready to run.

    ``flow_type`` is ``BATCH`` (default: nothing is lost, slow consumers slow the
    producers) or ``REALTIME`` (a full queue drops its oldest item).  See
    ``FlowOptions`` for ``flow_options``.

    ``stop()`` called before ``run()`` makes the next ``run()`` return at once
    without starting anything; the request is used up by that run.
    """

    def __init__(
        self,
        producers: Sequence[ProducerNode],
        consumers: Sequence[ConsumerNode],
        flow_type: FlowType | str = FlowType.BATCH,
        flow_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.flow_type = _flow_type(flow_type)
        self.options: FlowOptions = parse_options(flow_options, realtime=self.flow_type is FlowType.REALTIME)
        self.graph = check_graph(producers, consumers)
        # Local tasks follow the graph's branches; Ray's run the plain chain (docs/ray.md).
        self.stages: tuple[Stage, ...] = linearize(self.graph) if self.options.engine == "ray" else route(self.graph)
        self._lock = threading.Lock()
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduler: Any = None
        self._pending_stop: tuple[bool, float | None] = (False, None)
        self._stats: dict[str, Any] = {}
        self._runs = 0  # runs started so far (results() readers bind to one of them)
        self._last_run: Any = None  # the scheduler of the latest run, kept once it is over
        self._taps: dict[int, ResultsTap] = {}  # per ResultsConsumer: its channel in the latest run read
        self._seen_over: dict[int, int] = {}  # per ResultsConsumer: the latest run seen over by a reader

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node of the flow, in run order."""
        return self.graph.order

    @property
    def started(self) -> bool:
        """Whether the run in progress has every task's node open and its producers emitting."""
        scheduler = self._scheduler
        return scheduler is not None and bool(scheduler.started)

    @property
    def running(self) -> bool:
        """Whether ``run()`` is in progress."""
        return self._running

    def _new_scheduler(self, pool: Any = None) -> Any:
        """The engine's scheduler for one run (each engine has the same interface)."""
        from ..engine import scheduler_for

        if pool is None:
            return scheduler_for(self.options.engine)(self.stages, self.flow_type, self.options)
        from ..engine.pool import Pool

        if not isinstance(pool, Pool):
            raise TypeError(f"Flow.run(pool=...) takes an asyncflow.Pool, got {type(pool).__name__}")
        if self.options.engine != "local":
            raise ValueError("Flow.run(pool=...): a pool holds local processes; the Ray engine runs its own actors")
        return scheduler_for("local")(self.stages, self.flow_type, self.options, pool=pool)

    async def run(self, *, pool: Any = None) -> None:
        """Run the flow until it ends (docs/design.md#stop-protocol); raise ``FlowError`` if it failed.

        Returns (or raises) only once every child process has exited.  If the task
        awaiting it is cancelled, the flow is stopped, and ``CancelledError`` is
        re-raised after clean-up.
        """
        with self._lock:
            if self._running:
                raise RuntimeError("Flow.run(): this flow is already running; wait for it to end first")
            scheduler = self._new_scheduler(pool)
            self._running = True
            self._loop = asyncio.get_running_loop()
            self._scheduler = scheduler
            self._runs += 1
            self._last_run = scheduler
            requested, timeout = self._pending_stop
            self._pending_stop = (False, None)
        try:
            if requested:
                scheduler.request_stop(timeout)
            if self.options.progress and _progress_display is not None:
                await _progress_display(self, scheduler.run())
            else:
                await scheduler.run()
        finally:
            # After any run, failed or stopped too, the figures describe that run.
            self._stats = dict(scheduler.stats())
            with self._lock:
                self._running = False
                self._scheduler = None
                self._loop = None
        self._report_drops()

    def results(self, node: ResultsConsumer, *, start_timeout: float | None = 10.0) -> Results:
        """Iterate over what ``node`` (a ``ResultsConsumer`` of this flow) receives.

        Reads the run in progress, else the next one to start (``run()`` started
        elsewhere, e.g. as a task): ``RuntimeError`` if none has started within
        ``start_timeout`` seconds of the first pull (``None``: no limit).  Yields items
        as they arrive, in order, with backpressure, and ends when that run ends, at
        once (no items) if it ended before starting its tasks; ``await run`` tells
        how it ended.  Leaving the ``async for`` loop (even with the returned object
        kept in a variable) lets the remaining items be discarded so the flow can
        finish; several readers at once share the items.  See ``Results``.
        """
        if not isinstance(node, ResultsConsumer) or not any(node is n for n in self.graph.consumers):
            raise ValueError(f"Flow.results(): {node!r} is not a ResultsConsumer of this flow")
        if start_timeout is not None and (isinstance(start_timeout, bool) or not start_timeout >= 0):
            raise ValueError(f"Flow.results(): start_timeout must be seconds >= 0 or None, got {start_timeout!r}")
        with self._lock:
            first_run = self._runs if self._running else self._runs + 1
        return Results(self, node, first_run, start_timeout)

    async def _results_tap(
        self, node: ResultsConsumer, first_run: int, start_timeout: float | None
    ) -> ResultsTap | None:
        """``node``'s channel in the run to read (waits for it to start); ``None``: that run is over.

        The run in progress; between runs, the latest one if it ended after
        ``results()`` was called (run ``first_run`` or later) or if no reader has
        seen its end yet (it ended at once: stop() before run(), a failure at
        start); else the next run to start.
        """
        loop = asyncio.get_running_loop()
        deadline = None if start_timeout is None else loop.time() + start_timeout
        while not (self._runs and (self._running or self._runs >= first_run or not self._seen_end(node))):
            if deadline is not None and loop.time() >= deadline:
                before = " (its last run ended before results() was called)" if self._runs else ""
                raise RuntimeError(
                    f"Flow.results(): no run of this flow started within {start_timeout} s{before}; start "
                    "flow.run() (e.g. as a task) to read its results, or pass start_timeout=None to wait longer"
                )
            await asyncio.sleep(0.005)
        scheduler, run = self._last_run, self._runs
        await scheduler.host_ready.wait()
        receiver = scheduler.results_receiver(node)
        if receiver is None or getattr(scheduler, "host_closed", False):
            self._seen_over[id(node)] = run
            return None
        tap = self._taps.get(id(node))
        if tap is None or tap.receiver is not receiver:
            tap = self._taps[id(node)] = ResultsTap(receiver, scheduler)
        return tap

    def _seen_end(self, node: ResultsConsumer) -> bool:
        """Whether a reader has seen the end of ``node``'s items in the latest run."""
        if self._seen_over.get(id(node)) == self._runs:
            return True
        tap = self._taps.get(id(node))
        return tap is not None and tap.run is self._last_run and tap.ended

    def stop(self, timeout: float | None = None) -> None:
        """Ask the flow to stop: producers stop emitting and ``STOP_FLOW`` drains the graph.

        Safe from any coroutine, thread or signal handler; it does not wait.  With
        ``timeout`` (seconds), tasks still running after that long are ended hard and
        ``run()`` raises ``FlowKilledError`` naming them.
        """
        if timeout is not None and (isinstance(timeout, bool) or not timeout >= 0):
            raise ValueError(f"Flow.stop(): timeout must be a number of seconds >= 0, got {timeout!r}")
        with self._lock:
            loop, scheduler = self._loop, self._scheduler
            if scheduler is None or loop is None:
                self._pending_stop = (True, timeout)
                return
        try:
            loop.call_soon_threadsafe(scheduler.request_stop, timeout)
        except RuntimeError:
            pass  # the loop has closed: the run is over

    def kill(self) -> None:
        """End every task hard now (what a second Ctrl-C does); ``run()`` raises ``FlowKilledError``."""
        with self._lock:
            loop, scheduler = self._loop, self._scheduler
        if scheduler is not None and loop is not None:
            try:
                loop.call_soon_threadsafe(scheduler.kill, "kill() was called")
            except RuntimeError:
                pass

    def stats(self) -> dict[str, Any]:
        """Per task: items received, processed, skipped, dropped, sent, busy time, queue, item times.

        Live while the flow runs (refreshed every half second by each task), final
        after ``run()`` returned.  Values are ``asyncflow.engine.spec.TaskStats``.
        """
        scheduler = self._scheduler
        if scheduler is not None:
            return dict(scheduler.stats())
        return dict(self._stats)

    def _report_drops(self) -> None:
        from ..engine.spec import charged_drops

        for node, causes in charged_drops(self._stats.values()).items():
            said = ", ".join(f"{count} {_DROP_WORDS.get(cause, cause)}" for cause, count in causes.items())
            log.info("%s dropped %d items: %s", node, sum(causes.values()), said)
        for name, stats in self._stats.items():
            if stats.skipped:
                log.warning("%s skipped %d items that raised (on_error='skip')", name, stats.skipped)


    def __repr__(self) -> str:
        return f"<Flow {' -> '.join(n.name for n in self.graph.order)} ({self.flow_type.value})>"
