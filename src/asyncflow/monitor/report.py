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

The bottleneck is the node with the lowest ``max/s``, the flow's ceiling; busy %
only supports the verdict.  Busy % alone misleads: when a run fits in the items a
hop holds in flight, no node ever waits for room downstream, so a node upstream of
the slowest works flat out and reads busier than the node that limits the flow;
and a paced source (a camera sleeping in ``next()``) reads 100 % busy whatever the
others can do.  A source is said to set the pace only when every other node has
spare capacity.  A run in which some node did fewer than :data:`MIN_ITEMS` items is
too short to tell.

Drops are charged to the node that lost the items, by cause: ``full`` (the node
could not keep up, and newer items replaced older ones in its input queue),
``stale`` (older than ``max_age`` when the node would have started on them),
``order`` (a worker of an ``nb_tasks`` node finished them after a newer item had
gone on).
"""

from __future__ import annotations

import io
import math
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

__all__ = ["CLOSE", "MIN_ITEMS", "SATURATED", "NodeReport", "Report", "bottleneck_report"]

#: Busy fraction from which the slowest node counts as saturated (the flow waits on it).
SATURATED = 0.5

#: Items a node must have done for its time per item (so its ``max/s``) to count as measured.
MIN_ITEMS = 5

#: Two nodes whose ``max/s`` differ by less than this factor are close: either may limit a run.
#: A source is said to set the pace only if every other node can do ``CLOSE`` times its rate.
CLOSE = 1.1


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


def _rate(items_per_second: float) -> str:
    """``"16.7"``, ``"500"``, ``"279 k"``: a rate in items/s, one decimal below 100."""
    return f"{items_per_second:.1f}" if items_per_second < 100 else _count(items_per_second)


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

    ``bottleneck`` is the name of the node that limits throughput: the one with the
    lowest ``max/s`` (a source only when the others have spare capacity; see
    :func:`bottleneck_report`), ``None`` when no node has reported.  ``saturated``
    is whether it is busy at least :data:`SATURATED` of the time (if not, no node
    limits the flow: overheads do).  ``too_short`` is set when some node did fewer
    than :data:`MIN_ITEMS` items: ``bottleneck`` is then only the slowest so far,
    and ``saturated`` is ``False``.  Print it with ``str()`` or
    ``render(console)``; rich consoles also take it directly.
    """

    rows: tuple[NodeReport, ...]
    bottleneck: str | None
    saturated: bool
    reason: str
    notes: tuple[str, ...]
    flow_type: FlowType
    wall_seconds: float
    too_short: bool = False

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
                _rate(r.max_items_per_second) if r.max_items_per_second else "—",
            ]
            if skipped:
                cells.append(_count(r.skipped))
            table.add_row(*cells)
        lines: list[RenderableType] = [table]
        ages_and_drops = self._ages_and_drops()
        if ages_and_drops is not None:
            lines.append(ages_and_drops)
        label = "Too short to tell" if self.too_short else "Bottleneck" if self.saturated else "No bottleneck"
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


def _capacity(r: NodeReport) -> str:
    """``"at most 16.7 items/s (60.0 ms an item)"``; ``", 4 at a time"`` for ``nb_tasks > 1``."""
    at_a_time = f", {r.tasks} at a time" if r.tasks > 1 else ""
    return f"at most {_rate(r.max_items_per_second)} items/s ({_seconds(r.mean_seconds)} an item{at_a_time})"


def _speed(r: NodeReport) -> float:
    """The node's ``max/s`` for ranking: unknown (no time measured) ranks as unlimited."""
    return r.max_items_per_second if r.max_items_per_second > 0 else math.inf


def _reason(best: NodeReport, runner_up: NodeReport | None, source: NodeReport | None) -> tuple[bool, str]:
    """Whether ``best`` is saturated, and why it limits the flow.

    ``runner_up``: the next slowest node; ``source``: the producer whose rate ``best``
    barely exceeds (``None`` when ``best`` is simply the slowest node).
    """
    busy = _pct(best.busy_fraction)
    if best.busy_fraction < SATURATED:
        return False, (
            f"no node is saturated: the slowest, {best.name}, is busy only {busy} of the time (it can do "
            f"{_rate(best.max_items_per_second)} items/s); the rest goes to moving items between processes and "
            "to start-up, not to the nodes' work"
        )
    if source is not None:
        standing = (
            f"barely more than {source.name} gives ({_rate(source.max_items_per_second)} items/s): "
            "it has no spare capacity, so the source only seems to set the pace"
        )
    else:
        standing = "the lowest max/s in the flow"
        if runner_up is not None and runner_up.max_items_per_second > 0:
            standing += f" (next: {runner_up.name}, {_rate(runner_up.max_items_per_second)} items/s)"
    if best.kind == "producer":
        return True, (
            f"{best.name} gives {_capacity(best)} in next(), {standing}; the other nodes have spare capacity: "
            "the source sets the pace (make its next() faster, or accept it for a paced or live source)"
        )
    if best.kind == "consumer":
        return True, (
            f"{best.name} is busy {busy} of the time and can do {_capacity(best)}, {standing}: make it faster "
            "(a consumer runs as one task: move heavy work into a processor with nb_tasks > 1)"
        )
    if best.tasks > 1:
        return True, (
            f"{best.name}'s {best.tasks} tasks are busy {busy} of the time on average and can do "
            f"{_capacity(best)}, {standing}: give it more tasks (nb_tasks > {best.tasks}) or make it faster"
        )
    return True, (
        f"{best.name} is busy {busy} of the time and can do {_capacity(best)}, {standing}: "
        "give it more tasks or make it faster"
    )


def _too_short(few: list[NodeReport], slowest: NodeReport) -> str:
    """Why a run in which ``few`` did fewer than :data:`MIN_ITEMS` items tells nothing yet."""
    listed = ", ".join(f"{r.name} ({r.items:,})" for r in few)
    reason = (
        f"fewer than {MIN_ITEMS} items on {listed}: too few to measure a node's time per item, so its "
        "max/s; run the flow on more items"
    )
    if slowest.max_items_per_second > 0:
        reason += f" (so far {slowest.name} has the lowest max/s, {_rate(slowest.max_items_per_second)} items/s)"
    return reason


def _choose(started: list[NodeReport]) -> tuple[NodeReport, NodeReport | None, NodeReport | None]:
    """The node that limits throughput, the next slowest, and the source it barely keeps up with (if any).

    The slowest node (lowest ``max/s``; busy % breaks ties) limits the flow.  A
    producer's ``max/s`` counts the time it sleeps in ``next()`` (a paced camera):
    it sets the pace only if every other node can do :data:`CLOSE` times its rate;
    otherwise the slowest other node, which has no spare capacity, is named.
    """
    ranked = sorted(started, key=lambda r: (_speed(r), -r.busy_fraction))
    best = ranked[0]
    source: NodeReport | None = None
    if best.kind == "producer":
        others = [r for r in ranked if r.kind != "producer" and r.max_items_per_second > 0]
        if others and others[0].max_items_per_second < CLOSE * best.max_items_per_second:
            best, source = others[0], best
    rest = [r for r in ranked if r is not best and r.max_items_per_second > 0]
    return best, (rest[0] if rest else None), source


def bottleneck_report(flow: Flow, stats: Mapping[str, Any] | None = None) -> Report:
    """Report where ``flow``'s time went and name the node that limits its throughput.

    ``stats`` is a ``flow.stats()`` snapshot (taken now when ``None``: after
    ``run()``, the final figures; during it, the live ones).

    How the bottleneck is chosen: in a pipeline every node runs, in the long run,
    at the pace of the slowest, so the node that limits throughput is the one
    with the lowest capacity, ``max/s`` = ``tasks / mean seconds per item`` (time
    inside ``next``/``process``/``consume``; measured per item, so it does not
    depend on how long the node waited).  Busy % (``busy_seconds / wall_seconds``,
    the mean over an ``nb_tasks`` node's tasks) only supports the verdict: it shows
    the limit only once the queues have filled, which never happens when the whole
    run fits in the items a hop holds in flight (``queue_size + 2 * batch_size``):
    then nodes upstream of the slowest are fed at once and work flat out, which the
    report notes.  A producer's time in ``next()`` includes the time a paced
    source sleeps, so a source is named (it "sets the pace") only when every other
    node can do :data:`CLOSE` times its rate; otherwise the slowest other node,
    which has no spare capacity, is.  If the named node is busy less than
    :data:`SATURATED` of the time, no node limits the flow (``Report.saturated`` is
    ``False``): transport and start-up do.  If some node did fewer than
    :data:`MIN_ITEMS` items, the run is too short to tell (``Report.too_short``).
    Busy time is wall time inside the node: with more tasks than CPU cores it
    includes waiting for a core, which the report notes.
    """
    aggregated = node_stats(flow, stats)
    rows = tuple(NodeReport.of(ns) for ns in aggregated)
    started = [r for r, ns in zip(rows, aggregated, strict=True) if ns.started]
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

    if not started:
        reason = "no node has reported yet: the flow has not run"
        return Report(rows, None, False, reason, tuple(notes), flow.flow_type, wall)
    best, runner_up, source = _choose(started)
    few = [r for r in started if r.items < MIN_ITEMS]
    if few:
        slowest = min(started, key=_speed)
        reason = _too_short(few, slowest)
        return Report(rows, slowest.name, False, reason, tuple(notes), flow.flow_type, wall, too_short=True)
    saturated, reason = _reason(best, runner_up, source)
    notes.extend(_evidence_notes(flow, started, best, runner_up))
    return Report(rows, best.name, saturated, reason, tuple(notes), flow.flow_type, wall)


def _evidence_notes(flow: Flow, started: list[NodeReport], best: NodeReport, runner_up: NodeReport | None) -> list[str]:
    """Notes on how far busy % supports the verdict, and on a close call."""
    notes: list[str] = []
    if len(started) < 2:
        return notes
    options = flow.options
    window = options.queue_size + 2 * options.batch_size
    emitted = max((r.items for r in started if r.kind == "producer"), default=0)
    if 0 < emitted <= window:
        bound = f"{options.max_bytes_in_flight / 2**20:g} MiB"
        notes.append(
            f"the whole run ({emitted:,} items) fits in what one hop holds in flight ({window:,} items: queue_size "
            f"{options.queue_size:,} + 2 * batch_size {options.batch_size:,}; fewer for items big enough to reach "
            f"max_bytes_in_flight, {bound}): if it did, no node had to wait for room downstream, nodes upstream "
            "of the slowest worked flat out, and busy % does not show which node limits the flow; max/s does"
        )
    busiest = max(started, key=lambda r: r.busy_fraction)
    if (
        busiest is not best
        and busiest.busy_fraction >= SATURATED
        and busiest.busy_fraction > best.busy_fraction
        and _speed(busiest) > _speed(best)
    ):
        notes.append(
            f"{busiest.name} was busier ({_pct(busiest.busy_fraction)}) but can do "
            f"{_rate(busiest.max_items_per_second)} items/s, more than {best.name}'s "
            f"{_rate(best.max_items_per_second)}: busy % shows how long a node worked, not whether the others "
            "waited on it"
        )
    if (
        runner_up is not None
        and best.max_items_per_second > 0
        and runner_up.max_items_per_second < CLOSE * best.max_items_per_second
    ):
        notes.append(
            f"{runner_up.name} is close ({_rate(runner_up.max_items_per_second)} items/s against "
            f"{_rate(best.max_items_per_second)}): either may limit a given run, and speeding up "
            f"{best.name} alone gains little"
        )
    return notes
