"""Per-node views of ``flow.stats()``: the tasks of an ``nb_tasks > 1`` node added up.

``flow.stats()`` is keyed by task (``"node"``, or ``"node[i]"`` for worker ``i`` of
``nb_tasks``); the live display and the bottleneck report both think in nodes, so
they read it through :func:`node_stats`.

Drops are charged to the node that lost the items, whichever task counted them: a
task's ``drops`` is keyed by node name (a sender counts the drops of the node whose
input queue was full), so a node's ``drops`` adds up every task's entry for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.node import ConsumerNode, Node, ProducerNode
from ..engine.spec import DROP_CAUSES, charged_drops, percentile

if TYPE_CHECKING:
    from ..core.flow import Flow

__all__ = ["TIMES", "NodeStats", "age_text", "cause_order", "drops_text", "kind_of", "node_stats", "task_names"]

#: The multiplication sign of ``"Sleepy \u00d74"`` (a node run by 4 tasks).
TIMES = "\u00d7"


def task_names(node: Node) -> list[str]:
    """The names of the tasks that run ``node``, as ``flow.stats()`` keys them."""
    if node.nb_tasks == 1:
        return [node.name]
    return [f"{node.name}[{i}]" for i in range(node.nb_tasks)]


def kind_of(node: Node) -> str:
    """``"producer"``, ``"processor"`` or ``"consumer"``."""
    if isinstance(node, ProducerNode):
        return "producer"
    if isinstance(node, ConsumerNode):
        return "consumer"
    return "processor"


@dataclass
class NodeStats:
    """What the tasks of one node have done so far, added up.

    Counts are sums over the tasks; ``wall_seconds`` is the longest task's;
    ``busy_fraction`` is the mean busy fraction of the tasks that have started (so a
    node of 4 tasks each busy 90 % reads 0.9, not 3.6); ``queued`` is the sum of
    the tasks' input buffers and ``capacity`` what they can hold together
    (``queue_size`` per task).

    ``drops`` (by cause, ``"full"`` / ``"stale"`` / ``"order"``) are the items this
    node lost, counted by any task of the flow; ``dropped`` is their total (plus, for
    stats that give no ``drops``, such as Ray's, the drops the node's own tasks
    counted, cause unknown).  ``ages`` are its tasks' recent item ages (seconds from
    the producer's emission to the node starting on the item), ``age_max`` the oldest
    it started on and ``aged`` how many items were measured.
    """

    node: Node
    tasks: int
    received: int = 0
    processed: int = 0
    skipped: int = 0
    dropped: int = 0
    sent: int = 0
    busy_seconds: float = 0.0
    wall_seconds: float = 0.0
    queued: int = 0
    capacity: int = 0
    busy_fraction: float = 0.0
    samples: list[float] = field(default_factory=list)
    started: bool = False
    finished: bool = False
    drops: dict[str, int] = field(default_factory=dict)
    ages: list[float] = field(default_factory=list)
    age_max: float = 0.0
    aged: int = 0

    @property
    def name(self) -> str:
        """The node's name."""
        return self.node.name

    @property
    def kind(self) -> str:
        """``"producer"``, ``"processor"`` or ``"consumer"``."""
        return kind_of(self.node)

    @property
    def done(self) -> int:
        """Items the node is through with: processed, plus those ``on_error="skip"`` dropped."""
        return self.processed + self.skipped

    @property
    def mean_seconds(self) -> float:
        """Mean time per item inside the node (over the whole run)."""
        return self.busy_seconds / self.processed if self.processed else 0.0

    @property
    def max_items_per_second(self) -> float:
        """The node's capacity: what its tasks could sustain if they never waited (0 if unknown).

        ``tasks / mean seconds per item``, measured per item, so it does not depend on
        how long the node waited; the lowest one is the flow's ceiling.  For a producer
        it counts the time ``next()`` sleeps (a paced source).
        """
        mean = self.mean_seconds
        return self.tasks / mean if mean > 0 else 0.0

    @property
    def items_per_second(self) -> float:
        """Items processed per second of the node's wall time (over the whole run)."""
        return self.processed / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def queue_fill(self) -> float | None:
        """Share of the input buffers in use (``None`` for a producer, which has none)."""
        if isinstance(self.node, ProducerNode) or self.capacity <= 0:
            return None
        return min(1.0, self.queued / self.capacity)

    @property
    def unattributed_drops(self) -> int:
        """Drops counted in ``dropped`` without a cause (stats that report no ``drops``)."""
        return max(0, self.dropped - sum(self.drops.values()))

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the recent per-item times of all its tasks, in seconds."""
        return percentile(self.samples, q)

    def age_percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the recent item ages of all its tasks, in seconds."""
        return percentile(self.ages, q)


def cause_order(cause: str) -> tuple[int, str]:
    """Known causes in ``DROP_CAUSES`` order, any other after them by name."""
    return (DROP_CAUSES.index(cause), "") if cause in DROP_CAUSES else (len(DROP_CAUSES), cause)


def age_text(seconds: float) -> str:
    """``"850 µs"``, ``"4.2 ms"``, ``"40 ms"``, ``"1.25 s"``, ``"12.5 s"``: an item's age, short."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 0.01:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    if seconds < 10:
        return f"{seconds:.2f} s"
    return f"{seconds:.1f} s"


def drops_text(dropped: int, drops: Mapping[str, int], label: str = "") -> str:
    """``"35 (full 30, stale 5)"`` (``label=" dropped"``: ``"35 dropped (full 30, stale 5)"``).

    Causes in ``DROP_CAUSES`` order; ``"7"`` when no cause is known; drops in
    ``dropped`` beyond those of ``drops`` read ``"other"``.
    """
    causes = sorted(((cause, n) for cause, n in drops.items() if n), key=lambda kv: cause_order(kv[0]))
    text = f"{dropped:,}{label}"
    if not causes:
        return text
    other = dropped - sum(n for _, n in causes)
    if other > 0:
        causes.append(("other", other))
    return text + " (" + ", ".join(f"{cause} {n:,}" for cause, n in causes) + ")"


def _charged(flow: Flow, stats: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Drops by the node that lost them, then by cause, summed over every task's ``drops``."""
    node_of = {node.name: node.name for node in flow.graph.order}
    for node in flow.graph.order:
        node_of.update((task, node.name) for task in task_names(node))
    charged: dict[str, dict[str, int]] = {}
    for lost_by, causes in charged_drops(stats.values()).items():
        name = node_of.get(lost_by)
        if name is None:
            continue  # not a node of this flow
        into = charged.setdefault(name, {})
        for cause, count in causes.items():
            into[cause] = into.get(cause, 0) + count
    return {name: dict(sorted(c.items(), key=lambda kv: cause_order(kv[0]))) for name, c in charged.items()}


def node_stats(flow: Flow, stats: Mapping[str, Any] | None = None) -> list[NodeStats]:
    """One :class:`NodeStats` per node of ``flow``, in run order.

    ``stats`` is a ``flow.stats()`` snapshot (taken now when ``None``).  A task with
    no entry yet (the run has not started it) counts as not started.
    """
    if stats is None:
        stats = flow.stats()
    queue_size = flow.options.queue_size
    charged = _charged(flow, stats)
    result: list[NodeStats] = []
    for node in flow.graph.order:
        names = task_names(node)
        agg = NodeStats(node=node, tasks=len(names), capacity=queue_size * len(names))
        agg.drops = charged.get(node.name, {})
        agg.dropped = sum(agg.drops.values())
        fractions: list[float] = []
        finished = bool(names)
        for task in names:
            ts = stats.get(task)
            if ts is None:
                finished = False
                continue
            agg.received += ts.received
            agg.processed += ts.processed
            agg.skipped += ts.skipped
            # Stats without ``drops`` (Ray's, older ones) charge their drops to the task's own node.
            agg.dropped += max(0, ts.dropped - _total(getattr(ts, "drops", None)))
            agg.sent += ts.sent
            agg.busy_seconds += ts.busy_seconds
            agg.wall_seconds = max(agg.wall_seconds, ts.wall_seconds)
            agg.queued += ts.queued
            agg.samples.extend(ts.samples)
            ages = list(getattr(ts, "ages", None) or ())
            agg.ages.extend(ages)
            agg.age_max = max(agg.age_max, getattr(ts, "age_max", 0.0) or 0.0, *ages)
            agg.aged += getattr(ts, "aged", 0) or 0
            finished = finished and bool(ts.finished)
            if ts.wall_seconds > 0 or ts.finished:
                agg.started = True
                fractions.append(ts.busy_fraction)
        agg.busy_fraction = sum(fractions) / len(fractions) if fractions else 0.0
        agg.finished = finished
        result.append(agg)
    return result


def _total(drops: Mapping[str, Mapping[str, int]] | None) -> int:
    """All the drops a task counted in its ``drops``."""
    return sum(sum(causes.values()) for causes in drops.values()) if drops else 0
