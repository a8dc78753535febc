"""``bottleneck_report(flow)``: where a flow's time went, and which node limits its throughput.

::

    await flow.run()
    print(bottleneck_report(flow))           # or bottleneck_report(flow).render(console)

Per node: items, items/s, mean and p95 time per item, the share of time its tasks
were busy inside the node versus waiting, and the rate its tasks could sustain if
they never waited (``max/s``: ``tasks / mean time per item``; the lowest one is
the flow's ceiling).  When ages were measured or items dropped, a second table
gives the age of the items each node started on (p50, p95, max: seconds since
their producer emitted them) and the items each node lost, in all and by cause.
Then the bottleneck, named with a one-line reason, and notes (more tasks than
cores, each node's drops explained, skipped items).

Drops are charged to the node that lost the items, by cause: ``full`` (the node
could not keep up, and newer items replaced older ones in its input queue),
``stale`` (older than ``max_age`` when the node would have started on them),
``order`` (a worker of an ``nb_tasks`` node finished them after a newer item had
gone on).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from ..core.constants import FlowType
from .stats import TIMES, NodeStats, cause_order, node_stats

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
    #: Items this node lost, by cause (``full`` / ``stale`` / ``order``), whichever task counted them.
    drops: Mapping[str, int] = field(default_factory=dict, hash=False)
    age_p50: float = 0.0  # item age when the node started on it (s), over the recent items
    age_p95: float = 0.0
    age_max: float = 0.0  # the oldest item it started on, over the run
    aged: int = 0  # items whose age was measured

    @property
    def has_ages(self) -> bool:
        """Whether item ages were measured for this node (never for a producer)."""
        return self.kind != "producer" and (self.aged > 0 or self.age_max > 0)

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
            drops=dict(ns.drops),
            age_p50=ns.age_percentile(50),
            age_p95=ns.age_percentile(95),
            age_max=ns.age_max,
            aged=max(ns.aged, len(ns.ages)),
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
        skipped = any(r.skipped for r in self.rows)
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
            if skipped:
                cells.append(_count(r.skipped))
            table.add_row(*cells)
        lines: list[RenderableType] = [table]
        ages_and_drops = self._ages_and_drops()
        if ages_and_drops is not None:
            lines.append(ages_and_drops)
        label = "Bottleneck" if self.saturated else "No bottleneck"
        lines.append(Text.assemble((f"{label}: ", "bold"), self.reason))
        lines.extend(Text(f"Note: {note}", style="dim") for note in self.notes)
        return Group(*lines)

    def _ages_and_drops(self) -> Table | None:
        """Per node: the age of the items it started on, and the items it lost by cause (``None``: neither)."""
        aged = any(r.has_ages for r in self.rows)
        dropped = any(r.dropped for r in self.rows)
        if not aged and not dropped:
            return None
        causes = sorted({c for r in self.rows for c, n in r.drops.items() if n}, key=cause_order)
        if causes and any(r.dropped > sum(r.drops.values()) for r in self.rows):
            causes.append("other")  # drops counted without a cause
        table = Table(title="item ages and drops", title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("node", no_wrap=True)
        if aged:
            for header in ("age p50", "age p95", "age max"):
                table.add_column(header, justify="right")
        if dropped:
            table.add_column("dropped", justify="right")
            for cause in causes:
                table.add_column(cause, justify="right")
        for r in self.rows:
            cells: list[RenderableType] = [r.name + (f" {TIMES}{r.tasks}" if r.tasks > 1 else "")]
            if aged:
                ages = (r.age_p50, r.age_p95, r.age_max) if r.has_ages else (0.0, 0.0, 0.0)
                cells.extend(_seconds(age) for age in ages)
            if dropped:
                by_cause = dict(r.drops, other=r.dropped - sum(r.drops.values()))
                cells.append(_count(r.dropped) if r.dropped else "—")
                cells.extend(_count(by_cause[c]) if by_cause.get(c) else "—" for c in causes)
            table.add_row(*cells)
        return table

    def render(self, console: Console | None = None) -> None:
        """Print the report on ``console`` (default: a new rich ``Console`` on stdout)."""
        (console if console is not None else Console()).print(self)

    def __str__(self) -> str:
        buffer = io.StringIO()
        Console(file=buffer, width=120, color_system=None, force_terminal=False, no_color=True).print(self)
        return buffer.getvalue().rstrip("\n")


def _drops_note(r: NodeReport, max_age: float | None) -> str:
    """``"detector lost 35 items: 30 full (...); 5 stale (...)"``: each cause explained.

    The items were lost by this node (it never started on them, or its result was
    not passed on), whichever task counted them.
    """
    limit = f"max_age = {max_age:g} s" if max_age is not None else "max_age"
    explain = {
        "full": f"{r.name} could not keep up, and newer items replaced older ones in its input queue",
        "stale": f"older than {limit} when {r.name} would have started on them",
        "order": (
            f"one of {r.name}'s nb_tasks workers finished them after a newer item had gone on, "
            "so they were dropped to keep items in order"
        ),
    }
    parts = [
        f"{count:,} {cause} ({explain[cause]})" if cause in explain else f"{count:,} {cause}"
        for cause, count in r.drops.items()
        if count
    ]
    other = r.dropped - sum(r.drops.values())
    if other > 0 and parts:
        parts.append(f"{other:,} other (counted by its own tasks, no cause reported)")
    elif other > 0:
        parts.append(
            f"{other:,} counted by its own tasks, no cause reported "
            "(REALTIME drops an older item for a newer one when a queue is full)"
        )
    return f"{r.name} lost {r.dropped:,} items: " + "; ".join(parts)


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
    max_age = getattr(flow.options, "max_age", None)
    for r in rows:
        if r.dropped:
            notes.append(_drops_note(r, max_age))
        if r.skipped:
            notes.append(f"{r.name} skipped {r.skipped:,} items that raised (on_error='skip')")
    if any(r.p95_seconds for r in rows):
        notes.append("p95/item is over each task's most recent items (up to 256; for a fast node, chunk means)")
    if any(r.has_ages for r in rows):
        notes.append(
            "age: from the producer's emission to the node starting on the item; p50/p95 over each task's "
            "most recent items (up to 256), max over the run"
        )

    if not ranked:
        reason = "no node has reported yet: the flow has not run"
        return Report(rows, None, False, reason, tuple(notes), flow.flow_type, wall)
    best = ranked[0]
    saturated, reason = _reason(best, ranked[1] if len(ranked) > 1 else None)
    return Report(rows, best.name, saturated, reason, tuple(notes), flow.flow_type, wall)
