"""``bottleneck_report(flow)``: where a flow's time went, and which node limits its throughput.

::

    await flow.run()
    print(bottleneck_report(flow))           # or bottleneck_report(flow).render(console)

Per node: items, items/s, mean and p95 time per item, the share of time its tasks
were busy inside the node versus waiting, and the rate its tasks could sustain if
they never waited (``max/s``: ``tasks / mean time per item``; the lowest one is
the flow's ceiling).  Then the bottleneck, named
with a one-line reason, and notes (more tasks than cores, REALTIME drops, skipped
items).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from ..core.constants import FlowType
from .stats import TIMES, NodeStats, node_stats

if TYPE_CHECKING:
    from ..core.flow import Flow

__all__ = ["SATURATED", "NodeReport", "Report", "bottleneck_report"]

#: Busy fraction from which a node counts as saturated (the flow waits on it).
SATURATED = 0.5


def _seconds(value: float) -> str:
    """``"850 µs"``, ``"12.3 ms"``, ``"1.25 s"``."""
    if value <= 0:
        return "—"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def _count(value: float) -> str:
    """``"7.5"``, ``"1,234"``, ``"279 k"``, ``"1.2 M"``: short enough for a narrow terminal."""
    if value < 10 and value != int(value):
        return f"{value:.1f}"
    if value < 100_000:
        return f"{value:,.0f}"
    if value < 1_000_000:
        return f"{value / 1e3:.0f} k"
    return f"{value / 1e6:.1f} M"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.0f} %"


@dataclass(frozen=True)
class NodeReport:
    """The figures the report gives for one node (its tasks added up)."""

    name: str
    kind: str  # producer / processor / consumer
    class_name: str
    tasks: int
    items: int  # items processed
    skipped: int
    dropped: int
    items_per_second: float  # over the node's wall time
    mean_seconds: float  # busy time / items
    p95_seconds: float  # over the recent items (at most 256 per task)
    busy_fraction: float  # mean over its tasks

    @property
    def waiting_fraction(self) -> float:
        """Share of its time the node waited (for input, or for room downstream)."""
        return max(0.0, 1.0 - self.busy_fraction)

    @property
    def max_items_per_second(self) -> float:
        """What its tasks could sustain if they never waited: ``tasks / mean time per item`` (0 if unknown)."""
        return self.tasks / self.mean_seconds if self.mean_seconds > 0 else 0.0

    @classmethod
    def of(cls, ns: NodeStats) -> NodeReport:
        """The report row for one node's aggregated stats."""
        return cls(
            name=ns.name,
            kind=ns.kind,
            class_name=type(ns.node).__name__,
            tasks=ns.tasks,
            items=ns.processed,
            skipped=ns.skipped,
            dropped=ns.dropped,
            items_per_second=ns.items_per_second,
            mean_seconds=ns.mean_seconds,
            p95_seconds=ns.percentile(95),
            busy_fraction=ns.busy_fraction,
        )


@dataclass(frozen=True)
class Report:
    """A bottleneck report: one row per node, the bottleneck's name and why, and notes.

    ``bottleneck`` is the name of the busiest node (``None`` when no node has
    reported), ``saturated`` whether it is busy at least :data:`SATURATED` of the
    time (if not, no node limits the flow: overheads do).  Print it with ``str()``
    or ``render(console)``; rich consoles also take it directly.
    """

    rows: tuple[NodeReport, ...]
    bottleneck: str | None
    saturated: bool
    reason: str
    notes: tuple[str, ...]
    flow_type: FlowType
    wall_seconds: float

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._renderable()

    def _renderable(self) -> RenderableType:
        table = Table(
            title=f"asyncflow bottleneck report ({self.flow_type.value} flow, {self.wall_seconds:.2f} s)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        table.add_column("node", no_wrap=True)
        table.add_column("items", justify="right")
        table.add_column("items/s", justify="right")
        table.add_column("mean", justify="right")
        table.add_column("p95", justify="right")
        table.add_column("busy", justify="right")
        table.add_column("wait", justify="right")
        table.add_column("max/s", justify="right")
        dropped = any(r.dropped for r in self.rows)
        skipped = any(r.skipped for r in self.rows)
        if dropped:
            table.add_column("dropped", justify="right")
        if skipped:
            table.add_column("skipped", justify="right")
        for r in self.rows:
            is_bottleneck = r.name == self.bottleneck and self.saturated
            style = "bold red" if is_bottleneck else ""
            name = r.name + (f" {TIMES}{r.tasks}" if r.tasks > 1 else "") + (" ◀" if is_bottleneck else "")
            cells: list[RenderableType] = [
                Text(name, style=style),
                _count(r.items),
                _count(r.items_per_second),
                _seconds(r.mean_seconds),
                _seconds(r.p95_seconds),
                Text(_pct(r.busy_fraction), style=style),
                _pct(r.waiting_fraction),
                _count(r.max_items_per_second) if r.max_items_per_second else "—",
            ]
            if dropped:
                cells.append(_count(r.dropped))
            if skipped:
                cells.append(_count(r.skipped))
            table.add_row(*cells)
        lines: list[RenderableType] = [table]
        label = "Bottleneck" if self.saturated else "No bottleneck"
        lines.append(Text.assemble((f"{label}: ", "bold"), self.reason))
        lines.extend(Text(f"Note: {note}", style="dim") for note in self.notes)
        return Group(*lines)

    def render(self, console: Console | None = None) -> None:
        """Print the report on ``console`` (default: a new rich ``Console`` on stdout)."""
        (console if console is not None else Console()).print(self)

    def __str__(self) -> str:
        buffer = io.StringIO()
        Console(file=buffer, width=120, color_system=None, force_terminal=False, no_color=True).print(self)
        return buffer.getvalue().rstrip("\n")


def _reason(best: NodeReport, runner_up: NodeReport | None) -> tuple[bool, str]:
    busy = _pct(best.busy_fraction)
    if best.busy_fraction < SATURATED:
        return False, (
            f"no node is saturated: the busiest, {best.name}, is busy only {busy} of the time; the rest "
            "goes to moving items between processes and to start-up, not to the nodes' work"
        )
    others = "the others wait"
    if runner_up is not None:
        others += f" (next busiest: {runner_up.name}, {_pct(runner_up.busy_fraction)})"
    if best.kind == "producer":
        return True, (
            f"{best.name} is busy {busy} of the time producing items; {others}: the source sets the pace "
            "(make its next() faster, or accept it for a paced or live source)"
        )
    if best.kind == "consumer":
        return True, (
            f"{best.name} is busy {busy} of the time; {others}: make it faster (a consumer runs as one task: "
            "move heavy work into a processor with nb_tasks > 1)"
        )
    if best.tasks > 1:
        return True, (
            f"{best.name}'s {best.tasks} tasks are busy {busy} of the time on average; {others}: "
            f"give it more tasks (nb_tasks > {best.tasks}) or make it faster"
        )
    return True, f"{best.name} is busy {busy} of the time; {others}: give it more tasks or make it faster"


def bottleneck_report(flow: Flow, stats: Mapping[str, Any] | None = None) -> Report:
    """Report where ``flow``'s time went and name the node that limits its throughput.

    ``stats`` is a ``flow.stats()`` snapshot (taken now when ``None``: after
    ``run()``, the final figures; during it, the live ones).

    How the bottleneck is chosen: in a pipeline every node runs at the pace of the
    slowest; that node's tasks are busy (inside ``next``/``process``/``consume``)
    nearly all the time, while the others spend theirs waiting for input or for
    room downstream.  So the bottleneck is the node with the highest busy fraction
    per task (``busy_seconds / wall_seconds``; for ``nb_tasks > 1`` the mean over its
    tasks, since N tasks each busy 90 % are as saturated as one task busy 90 %).
    If even that node is busy less than :data:`SATURATED` of the time, no node
    limits the flow (``Report.saturated`` is ``False``): transport and start-up do.
    Busy time is wall time inside the node: with more tasks than CPU cores it
    includes waiting for a core, which the report notes.
    """
    aggregated = node_stats(flow, stats)
    rows = tuple(NodeReport.of(ns) for ns in aggregated)
    started = [r for r, ns in zip(rows, aggregated, strict=True) if ns.started]
    ranked = sorted(started, key=lambda r: r.busy_fraction, reverse=True)
    wall = max((ns.wall_seconds for ns in aggregated), default=0.0)

    notes: list[str] = []
    cores = os.cpu_count() or 1
    tasks = sum(r.tasks for r in rows)
    if tasks > cores:
        notes.append(
            f"{tasks} tasks share {cores} CPU cores: busy time includes waiting for a core, so more tasks "
            "help only nodes that wait on I/O, not CPU-bound ones"
        )
    for r in rows:
        if r.dropped:
            notes.append(
                f"{r.name} dropped {r.dropped:,} items: the node after it could not keep up "
                "(REALTIME drops the oldest item of a full queue)"
            )
        if r.skipped:
            notes.append(f"{r.name} skipped {r.skipped:,} items that raised (on_error='skip')")
    if any(r.p95_seconds for r in rows):
        notes.append("p95/item is over each task's most recent items (up to 256; for a fast node, chunk means)")

    if not ranked:
        reason = "no node has reported yet: the flow has not run"
        return Report(rows, None, False, reason, tuple(notes), flow.flow_type, wall)
    best = ranked[0]
    saturated, reason = _reason(best, ranked[1] if len(ranked) > 1 else None)
    return Report(rows, best.name, saturated, reason, tuple(notes), flow.flow_type, wall)
