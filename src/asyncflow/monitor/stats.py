"""Per-node views of ``flow.stats()``: the tasks of an ``nb_tasks > 1`` node added up.

``flow.stats()`` is keyed by task (``"node"``, or ``"node[i]"`` for worker ``i`` of
``nb_tasks``); the live display and the bottleneck report both think in nodes, so
they read it through :func:`node_stats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.node import ConsumerNode, Node, ProducerNode

if TYPE_CHECKING:
    from ..core.flow import Flow

__all__ = ["TIMES", "NodeStats", "kind_of", "node_stats", "task_names"]

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
    def items_per_second(self) -> float:
        """Items processed per second of the node's wall time (over the whole run)."""
        return self.processed / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def queue_fill(self) -> float | None:
        """Share of the input buffers in use (``None`` for a producer, which has none)."""
        if isinstance(self.node, ProducerNode) or self.capacity <= 0:
            return None
        return min(1.0, self.queued / self.capacity)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the recent per-item times of all its tasks, in seconds."""
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def node_stats(flow: Flow, stats: Mapping[str, Any] | None = None) -> list[NodeStats]:
    """One :class:`NodeStats` per node of ``flow``, in run order.

    ``stats`` is a ``flow.stats()`` snapshot (taken now when ``None``).  A task with
    no entry yet (the run has not started it) counts as not started.
    """
    if stats is None:
        stats = flow.stats()
    queue_size = flow.options.queue_size
    result: list[NodeStats] = []
    for node in flow.graph.order:
        names = task_names(node)
        agg = NodeStats(node=node, tasks=len(names), capacity=queue_size * len(names))
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
            agg.dropped += ts.dropped
            agg.sent += ts.sent
            agg.busy_seconds += ts.busy_seconds
            agg.wall_seconds = max(agg.wall_seconds, ts.wall_seconds)
            agg.queued += ts.queued
            agg.samples.extend(ts.samples)
            finished = finished and bool(ts.finished)
            if ts.wall_seconds > 0 or ts.finished:
                agg.started = True
                fractions.append(ts.busy_fraction)
        agg.busy_fraction = sum(fractions) / len(fractions) if fractions else 0.0
        agg.finished = finished
        result.append(agg)
    return result
