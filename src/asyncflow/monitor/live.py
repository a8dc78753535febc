"""``LiveDisplay``: a live table of a running flow, one row per node, drawn with rich.

::

    display = LiveDisplay(flow)
    await display.run_until(flow.run())      # or: async with LiveDisplay(flow): await flow.run()

While the flow runs, the table shows for each node: its state (✓ done, … not started), items done,
items/s (over the last ``window`` seconds of the node's own clock), how full its
input queue is (``queued / queue_size``), items dropped with their causes
(``"35 (full 30, stale 5)"``: the items this node lost, whichever task counted
them), items skipped (``on_error="skip"``), the age of the items it starts on
(median and 95th percentile of the recent ones: seconds since their producer
emitted them), and how busy its tasks are.  The drops and age columns are always
shown for a ``REALTIME`` flow, for a ``BATCH`` one only when there are some.  The
tasks of an ``nb_tasks > 1`` node are added up (counts summed, busy averaged).
When the first producer has an int ``len_hint``, an overall progress bar follows:
items the consumers fed by that producer are through with, out of ``len_hint``.

On a console that is not a terminal (CI, a pipe, a file) nothing is drawn live:
only one summary line is printed at the end (with the consumers' age p95 and the
drops by cause).  The display is driven by the event loop (no thread); it reads
``flow.stats()``, which each task refreshes about every half second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ..core.constants import FlowType
from ..core.node import ConsumerNode, Node
from .stats import TIMES, NodeStats, age_text, drops_text, node_stats, task_names

if TYPE_CHECKING:
    from ..core.flow import Flow

__all__ = ["LiveDisplay", "default_console"]

log = logging.getLogger("asyncflow")

T = TypeVar("T")


def default_console() -> Console:
    """A rich console on stderr; 120 columns wide when stderr is not a terminal (and ``COLUMNS`` is unset)."""
    console = Console(stderr=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=True, width=120)
    return console


class _Rate:
    """Items/s of one task over a sliding window of its own clock (``wall_seconds``)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.points: deque[tuple[float, int]] = deque()

    def add(self, wall: float, count: int) -> None:
        if self.points and wall < self.points[-1][0]:
            self.points.clear()  # a new run: the task's clock started again
        if self.points and wall == self.points[-1][0]:
            return  # the same report as last time
        self.points.append((wall, count))
        while len(self.points) > 2 and wall - self.points[1][0] >= self.window:
            self.points.popleft()

    def rate(self) -> float:
        if not self.points:
            return 0.0
        wall, count = self.points[-1]
        if len(self.points) == 1:
            return count / wall if wall > 0 else 0.0
        wall0, count0 = self.points[0]
        return (count - count0) / (wall - wall0)


def _bar(fraction: float, width: int = 8) -> str:
    """A text bar: ``"████░░░░"`` for 0.5."""
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def _level_style(fraction: float) -> str:
    return "red" if fraction >= 0.9 else "yellow" if fraction >= 0.5 else "green"


def _meter(fraction: float) -> Text:
    """A bar and a percentage, coloured by how full it is."""
    return Text.assemble((_bar(fraction), _level_style(fraction)), f" {fraction * 100:3.0f} %")


def _has_ages(ns: NodeStats) -> bool:
    """Whether the row shows an age: a node that starts on items someone produced, once measured."""
    return ns.kind != "producer" and bool(ns.ages)


def _len_hint(node: Node) -> int | None:
    """The producer's ``len_hint`` if it is an int >= 0 (a hint that fails is no hint)."""
    try:
        hint = getattr(node, "len_hint", None)
    except Exception:
        return None
    if isinstance(hint, bool) or not isinstance(hint, int) or hint < 0:
        return None
    return hint


def _fed_by(producer: Node, consumers: tuple[ConsumerNode, ...]) -> list[Node]:
    """The consumers that ``producer`` reaches."""
    seen: set[int] = set()
    stack = [producer]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(node.children)
    return [c for c in consumers if id(c) in seen]


class LiveDisplay:
    """Show a running flow's nodes live in the terminal, and one summary line when it ends.

    - ``console``: where to draw (default: ``default_console()``, a rich ``Console``
      on stderr, so the flow's own output on stdout stays clean).  Not a terminal: nothing live, only
      the summary line at the end.
    - ``refresh``: seconds between redraws.
    - ``window``: seconds of recent history the items/s column averages over.

    Use ``await display.run_until(flow.run())``, ``async with display: ...``, or
    ``start()`` / ``stop()`` from within a running event loop.
    """

    def __init__(
        self,
        flow: Flow,
        *,
        console: Console | None = None,
        refresh: float = 0.25,
        window: float = 2.0,
    ) -> None:
        if isinstance(refresh, bool) or not isinstance(refresh, (int, float)) or not refresh > 0:
            raise ValueError(f"LiveDisplay: refresh must be a number of seconds > 0, got {refresh!r}")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0:
            raise ValueError(f"LiveDisplay: window must be a number of seconds > 0, got {window!r}")
        self.flow = flow
        self.console = console if console is not None else default_console()
        self.refresh = float(refresh)
        self.window = float(window)
        #: The summary line, once ``stop()`` has printed it.
        self.summary: str | None = None
        self._rates: dict[str, _Rate] = {}
        self._snapshot: dict[str, Any] = {}
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None
        self._broken = False
        self._total: int | None = None
        self._progress: Progress | None = None
        self._progress_task: TaskID | None = None
        self._watched: list[Node] = []

    # -- life cycle -----------------------------------------------------------
    @property
    def is_live(self) -> bool:
        """Whether the table is drawn live (the console is a terminal)."""
        return self.console.is_terminal

    def start(self) -> None:
        """Start drawing (needs a running event loop); call ``stop()`` when the flow has ended."""
        if self._task is not None:
            raise RuntimeError("LiveDisplay.start(): already started")
        loop = asyncio.get_running_loop()
        self._started_at = time.monotonic()
        self._stopped_at = None
        self.summary = None
        self._rates.clear()
        self._snapshot = {}
        self._setup_progress()
        if self.is_live:
            self._live = Live(self.render(), console=self.console, auto_refresh=False, transient=False)
            self._live.start(refresh=True)
        self._task = loop.create_task(self._refresh_loop(), name="asyncflow-live-display")

    def stop(self, outcome: str = "finished") -> str:
        """Stop drawing: draw the final table (on a terminal), print the summary line and return it.

        ``outcome`` is the word the summary uses (``"finished"``, ``"stopped"``,
        ``"failed"``, ``"cancelled"``).  After a run that did not finish, the last
        live numbers are shown (the flow keeps no final stats for it).
        """
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._stopped_at = time.monotonic()
        if outcome in ("finished", "stopped"):
            final = self.flow.stats()
            if final:
                self._snapshot = final
        self._observe(self._snapshot)
        if self._live is not None:
            try:
                self._live.update(self.render(final=True))
            finally:
                self._live.stop()  # draws the final table
                self._live = None
        summary = self.summary = self._summary_line(outcome)
        self.console.print(Text(summary), soft_wrap=True)
        return summary

    async def run_until(self, awaitable: Awaitable[T]) -> T:
        """Display while awaiting ``awaitable`` (typically ``flow.run()``); return its result."""
        self.start()
        outcome = "failed"
        try:
            result = await awaitable
            outcome = "finished"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self.stop(outcome)

    async def __aenter__(self) -> LiveDisplay:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.stop("finished")
        elif issubclass(exc_type, asyncio.CancelledError):
            self.stop("cancelled")
        else:
            self.stop("failed")

    # -- polling ----------------------------------------------------------------
    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            if self._broken:
                continue
            try:
                self._tick()
            except Exception:
                # A display bug must not take the flow down with it: stop drawing, say so once.
                self._broken = True
                log.warning("asyncflow: the live display failed and stops updating", exc_info=True)

    def _tick(self) -> None:
        if self.flow.running:
            self._snapshot = self.flow.stats()
        self._observe(self._snapshot)
        if self._live is not None:
            self._live.update(self.render(), refresh=True)

    def _observe(self, stats: Mapping[str, Any]) -> None:
        for name, ts in stats.items():
            rate = self._rates.get(name)
            if rate is None:
                rate = self._rates[name] = _Rate(self.window)
            rate.add(ts.wall_seconds, ts.processed + ts.skipped)

    # -- rendering ----------------------------------------------------------------
    def _setup_progress(self) -> None:
        graph = self.flow.graph
        self._total = _len_hint(graph.producers[0])
        self._watched = _fed_by(graph.producers[0], graph.consumers)
        self._progress = self._progress_task = None
        if self._total is None or not self.is_live:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=40),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
        )
        self._progress_task = self._progress.add_task("items", total=self._total)

    def _elapsed(self) -> float:
        if self._started_at is None:
            return 0.0
        end = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return end - self._started_at

    def _node_rate(self, ns: NodeStats, final: bool) -> float:
        if final or ns.finished:
            return ns.items_per_second
        return sum(self._rates[t].rate() for t in task_names(ns.node) if t in self._rates)

    def _consumed(self, rows: list[NodeStats]) -> int:
        """Items the consumers fed by the first producer are all through with."""
        by_id = {id(ns.node): ns for ns in rows}
        counts = [by_id[id(c)].done for c in self._watched if id(c) in by_id]
        return min(counts) if counts else 0

    def render(self, stats: Mapping[str, Any] | None = None, *, final: bool = False) -> RenderableType:
        """The table (and the progress bar) for ``stats`` (default: the latest snapshot).

        What the display draws; usable on its own inside another rich layout.
        ``final`` marks the table as the one drawn when the flow has ended.
        """
        rows = node_stats(self.flow, self._snapshot if stats is None else stats)
        realtime = self.flow.flow_type is FlowType.REALTIME
        show_dropped = realtime or any(ns.dropped for ns in rows)
        show_skipped = any(ns.node.on_error == "skip" or ns.skipped for ns in rows)
        show_age = realtime or any(_has_ages(ns) for ns in rows)
        max_age = getattr(self.flow.options, "max_age", None)
        running = [ns for ns in rows if ns.started]
        busiest = max(running, key=lambda ns: ns.busy_fraction, default=None)

        state = "done" if final else "running"
        table = Table(
            title=f"asyncflow · {self.flow.flow_type.value} flow · {state} · {self._elapsed():.1f} s",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            caption=(
                f"busiest: {busiest.name} ({busiest.busy_fraction * 100:.0f} % busy)"
                if busiest is not None and busiest.busy_fraction > 0
                else None
            ),
            caption_justify="left",
        )
        table.add_column("node", no_wrap=True)
        table.add_column("done", justify="right")
        table.add_column("items/s", justify="right")
        table.add_column("queue", no_wrap=True)
        if show_dropped:
            table.add_column("dropped", justify="right")
        if show_skipped:
            table.add_column("skipped", justify="right")
        if show_age:
            table.add_column("age p50/p95", justify="right", no_wrap=True)
        table.add_column("busy", no_wrap=True)
        for ns in rows:
            name = ns.name + (f" {TIMES}{ns.tasks}" if ns.tasks > 1 else "")
            if ns.finished:
                label = Text(f"{name} ✓", style="green")
            elif not ns.started:
                label = Text(f"{name} …", style="dim")
            else:
                label = Text(name, style="bold" if ns is busiest and not final else "")
            fill = ns.queue_fill
            cells: list[RenderableType] = [
                label,
                f"{ns.done:,}",
                f"{self._node_rate(ns, final):,.0f}",
                Text("—", style="dim") if fill is None else _meter(fill),
            ]
            if show_dropped:
                cells.append(Text(drops_text(ns.dropped, ns.drops), style="red" if ns.dropped else ""))
            if show_skipped:
                cells.append(Text(f"{ns.skipped:,}", style="yellow" if ns.skipped else ""))
            if show_age:
                cells.append(self._age_cell(ns, max_age))
            cells.append(_meter(ns.busy_fraction))
            table.add_row(*cells)

        if self._progress is None or self._progress_task is None:
            return table
        self._progress.update(self._progress_task, completed=self._consumed(rows))
        return Group(table, self._progress)

    @staticmethod
    def _age_cell(ns: NodeStats, max_age: float | None) -> Text:
        """``"12 ms / 40 ms"`` (p50 / p95); red when p95 is past ``max_age``; "—" with no ages."""
        if not _has_ages(ns):
            return Text("—", style="dim")
        p95 = ns.age_percentile(95)
        style = "red" if max_age is not None and p95 > max_age else ""
        return Text(f"{age_text(ns.age_percentile(50))} / {age_text(p95)}", style=style)

    def _summary_line(self, outcome: str) -> str:
        rows = node_stats(self.flow, self._snapshot)
        elapsed = self._elapsed()
        consumed = self._consumed(rows)
        parts = [f"asyncflow: {outcome} in {elapsed:.2f} s"]
        rate = f" ({consumed / elapsed:,.0f} items/s)" if elapsed > 0 else ""
        total = f" of {self._total:,}" if self._total is not None else ""
        parts.append(f"{consumed:,}{total} items consumed{rate}")
        started = [ns for ns in rows if ns.started]
        busiest = max(started, key=lambda ns: ns.busy_fraction, default=None)
        if busiest is not None:
            parts.append(f"busiest node {busiest.name} ({busiest.busy_fraction * 100:.0f} % busy)")
        aged = [ns for ns in rows if ns.kind == "consumer" and _has_ages(ns)]
        if aged:
            ages = ", ".join(f"{ns.name} {age_text(ns.age_percentile(95))}" for ns in aged)
            parts.append(f"age p95 {ages}")
        dropped = sum(ns.dropped for ns in rows)
        skipped = sum(ns.skipped for ns in rows)
        if dropped or self.flow.flow_type is FlowType.REALTIME:
            by_cause: dict[str, int] = {}
            for ns in rows:
                for cause, count in ns.drops.items():
                    by_cause[cause] = by_cause.get(cause, 0) + count
            parts.append(drops_text(dropped, by_cause, " dropped"))
        if skipped:
            parts.append(f"{skipped:,} skipped")
        return "; ".join(parts)
