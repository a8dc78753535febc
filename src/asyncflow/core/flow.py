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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from .constants import STOP_FLOW, FlowType
from .graph import Stage, check_graph, linearize, route
from .host import ResultsConsumer
from .node import ConsumerNode, Node, ProducerNode
from .options import FlowOptions, parse_options

__all__ = ["Flow", "ProgressDisplay", "set_progress_display"]

log = logging.getLogger("asyncflow")

_DROP_WORDS = {
    "full": "replaced by newer items while it was busy",
    "stale": "older than max_age",
    "order": "finished after a newer item had gone on",
}


async def _discard(receiver: Any) -> None:
    """Take (and drop) what a ResultsConsumer still sends once its reader has left."""
    while await receiver.recv() is not STOP_FLOW:
        pass


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
        self._drains: set[asyncio.Future[None]] = set()

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node of the flow, in run order."""
        return self.graph.order

    @property
    def running(self) -> bool:
        """Whether ``run()`` is in progress."""
        return self._running

    def _new_scheduler(self) -> Any:
        """The engine's scheduler for one run (each engine has the same interface)."""
        from ..engine import scheduler_for

        return scheduler_for(self.options.engine)(self.stages, self.flow_type, self.options)

    async def run(self) -> None:
        """Run the flow until it ends (see DESIGN §3); raise ``FlowError`` if it failed.

        Returns (or raises) only once every child process has exited.  If the task
        awaiting it is cancelled, the flow is stopped, and ``CancelledError`` is
        re-raised after clean-up.
        """
        with self._lock:
            if self._running:
                raise RuntimeError("Flow.run(): this flow is already running; wait for it to end first")
            self._running = True
            self._loop = asyncio.get_running_loop()
            scheduler = self._scheduler = self._new_scheduler()
            requested, timeout = self._pending_stop
            self._pending_stop = (False, None)
        try:
            if requested:
                scheduler.request_stop(timeout)
            if self.options.progress and _progress_display is not None:
                self._stats = await _progress_display(self, scheduler.run())
            else:
                self._stats = await scheduler.run()
            self._report_drops()
        finally:
            # After any run, failed or stopped too, the figures describe that run.
            self._stats = dict(scheduler.stats())
            with self._lock:
                self._running = False
                self._scheduler = None
                self._loop = None

    def results(self, node: ResultsConsumer) -> AsyncIterator[Any]:
        """Iterate over what ``node`` (a ``ResultsConsumer`` of this flow) receives.

        Waits for ``run()`` (started elsewhere, e.g. as a task) to start, then yields
        items as they arrive, with backpressure, until the flow ends.  Leaving the
        loop early lets the remaining items be discarded so the flow can finish.
        """
        if not isinstance(node, ResultsConsumer) or not any(node is n for n in self.graph.consumers):
            raise ValueError(f"Flow.results(): {node!r} is not a ResultsConsumer of this flow")
        return self._results(node)

    async def _results(self, node: ResultsConsumer) -> AsyncIterator[Any]:
        from ..engine.channel import Receiver

        while True:
            scheduler = self._scheduler
            if scheduler is not None:
                await scheduler.host_ready.wait()
                break
            await asyncio.sleep(0.005)  # run() has not started yet
        receiver: Receiver | None = scheduler.results_receiver(node)
        if receiver is None:
            return  # the run ended (or stopped) before it started its tasks
        finished = False
        try:
            while True:
                row = await receiver.recv()
                if row is STOP_FLOW:
                    finished = True
                    return
                yield row[0]
        finally:
            if not finished:
                self._drains.add(asyncio.ensure_future(_discard(receiver)))

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
        charged: dict[str, dict[str, int]] = {}
        for stats in self._stats.values():
            for node, causes in getattr(stats, "drops", {}).items():
                for cause, count in causes.items():
                    charged.setdefault(node, {})[cause] = charged.get(node, {}).get(cause, 0) + count
        for node, causes in charged.items():
            said = ", ".join(f"{count} {_DROP_WORDS.get(cause, cause)}" for cause, count in causes.items())
            log.info("%s dropped %d items: %s", node, sum(causes.values()), said)
        for name, stats in self._stats.items():
            if stats.skipped:
                log.warning("%s skipped %d items that raised (on_error='skip')", name, stats.skipped)


    def __repr__(self) -> str:
        return f"<Flow {' -> '.join(n.name for n in self.graph.order)} ({self.flow_type.value})>"
