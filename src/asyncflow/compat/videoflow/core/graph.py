"""videoflow's ``videoflow.core.graph``: ``GraphEngine``, the graph check and sort behind ``Flow``.

``GraphEngine(producers, consumers)`` checks the graph as the facade's ``Flow``
does, without running or changing anything: ``ValueError`` for a cycle, for a
consumer not reachable from the producers, for a node below the producers that
reads an unwired or unreachable node (a dangling input), for two nodes with the
same name; ``TypeError`` for lists that do not hold nodes (see
``asyncflow.core.graph.check_graph``).  As ``Flow``, it accepts what videoflow's
accepted: an empty ``consumers`` list, processors whose output nothing reads,
consumers below the producers that are not listed.

``topological_sort()`` lists the nodes reachable from the producers in videoflow's
order (:func:`asyncflow.compat.videoflow.utils.graph.topological_sort`).  A
``TaskModuleNode`` stands for its inner nodes: it took over their edges, so it is
one node of the sort, and its inner nodes are not in it.

One difference: videoflow's ``GraphEngine`` took exactly one producer
(``AttributeError`` otherwise); asyncflow runs any number, so this one does too.
"""

from __future__ import annotations

from collections.abc import Sequence

from asyncflow.core.node import ConsumerNode, Node, ProducerNode

from ..utils.graph import topological_sort
from .flow import check_videoflow_graph

__all__ = ["GraphEngine"]


class GraphEngine:
    """The checked graph of ``producers`` and ``consumers`` and its topological sort (videoflow's)."""

    def __init__(self, producers: Sequence[ProducerNode], consumers: Sequence[ConsumerNode]) -> None:
        check_videoflow_graph(producers, consumers)
        self._producers = list(producers)
        self._consumers = list(consumers)
        self._tsort = topological_sort(self._producers)

    def topological_sort(self) -> list[Node]:
        """The nodes reachable from the producers, each before the nodes that read it (a new list)."""
        return list(self._tsort)
