"""videoflow's ``videoflow.core.bottlenecks``: running statistics, and where asyncflow reports bottlenecks.

videoflow appended a hidden ``MetadataConsumer`` to every flow: it received each
node's timings as metadata and logged a "Flow fps per nodes" table naming the
bottlenecks.  asyncflow measures every task itself instead:

- ``flow.stats()`` (the facade's ``Flow``) after the run: per task, items, busy time,
  waits, drops;
- ``asyncflow.monitor.bottleneck_report(flow.core_flow)``: per node times and the
  node that limits throughput, with the reason;
- ``flow_options={"progress": True}``: a live table while the flow runs.

So ``MetadataConsumer`` and ``MetricsLogger`` keep their names and raise
:class:`~asyncflow.compat.videoflow._unavailable.NotAvailableError` (a
``NotImplementedError``) pointing there.  ``Metric`` (Welford's running mean and
variance, which like videoflow's skips the first value) and ``Accountant`` are
plain computations and work as in videoflow.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from asyncflow.core.node import ConsumerNode

from .._unavailable import unavailable

__all__ = ["Accountant", "MetadataConsumer", "Metric", "MetricMessage", "MetricsLogger"]

MetricMessage = namedtuple("MetricMessage", "nodeid logtype value")

_INSTEAD = (
    "fed on timing metadata that asyncflow's nodes do not send: asyncflow measures every task itself. "
    "Use flow.stats() after the run, asyncflow.monitor.bottleneck_report(flow.core_flow) for the node "
    "that limits throughput, or Flow(..., flow_options={'progress': True}) for a live table"
)


class Metric:
    """The running mean and variance of a series (Welford's algorithm); the first value is skipped, as in videoflow."""

    def __init__(self, name: str = "") -> None:
        self._name = name
        self._count = 0
        self._m2 = 0.0
        self._mean = 0.0
        self._first_call = True

    def update_stats(self, new_value: float) -> None:
        """Fold ``new_value`` into the mean and variance (the first call only arms the metric)."""
        if self._first_call:
            self._first_call = False
            return
        self._count += 1
        delta = new_value - self._mean
        self._mean += delta / self._count
        self._m2 += delta * (new_value - self._mean)

    @property
    def name(self) -> str:
        """The metric's name."""
        return self._name

    @property
    def mean(self) -> float:
        """The mean of the values so far (0 before the second value)."""
        return self._mean

    @property
    def variance(self) -> float:
        """The population variance of the values so far (``ZeroDivisionError`` before the second value)."""
        return self._m2 / float(self._count)


class Accountant:
    """Per node (by index), a ``Metric`` per log type: processing time and actual processing time."""

    logtype_proctime = "proctime"
    logtype_actualproctime = "actual_proctime"
    stat_mean = "mean"
    stat_variance = "variance"

    def __init__(self, nb_nodes: int) -> None:
        self._nodes_metrics: list[dict[str, Metric]] = [{} for _ in range(nb_nodes)]

    def update_actualproctime(self, node_id: int, value: float) -> None:
        """Record one actual processing time of node ``node_id``."""
        self.update_stat(node_id, self.logtype_actualproctime, value)

    def update_proctime(self, node_index: int, value: float) -> None:
        """Record one processing time of node ``node_index``."""
        self.update_stat(node_index, self.logtype_proctime, value)

    def update_stat(self, node_index: int, log_type: str, value: float) -> None:
        """Record one ``log_type`` value of node ``node_index``."""
        metrics = self._nodes_metrics[node_index]
        if log_type not in metrics:
            metrics[log_type] = Metric(log_type)
        metrics[log_type].update_stats(value)

    def _get_stat(self, stat_name: str) -> list[float]:
        means: list[float] = []
        for metrics in self._nodes_metrics:
            if stat_name not in metrics:
                raise ValueError(f"stat_name {stat_name} is not in node accountant")
            means.append(metrics[stat_name].mean)
        return means

    def get_actual_proctime(self) -> list[float]:
        """The mean actual processing time of each node."""
        return self._get_stat(self.logtype_actualproctime)

    def get_proctime(self) -> list[float]:
        """The mean processing time of each node."""
        return self._get_stat(self.logtype_proctime)


class MetricsLogger:
    """videoflow's timing log writer: not available (building one raises; see the module docstring)."""

    def __init__(self, log_folder: str = "./") -> None:
        unavailable("MetricsLogger", _INSTEAD)

    def log(self, node_id: str, log_type: str, value: float) -> None:
        """Not available."""
        unavailable("MetricsLogger", _INSTEAD)


class MetadataConsumer(ConsumerNode):
    """videoflow's hidden timing consumer: not available (building one raises; see the module docstring)."""

    def __init__(self, log_folder: str = "./") -> None:
        unavailable("MetadataConsumer", _INSTEAD)

    def consume(self, *metadata: Any) -> None:
        """Not available."""
        unavailable("MetadataConsumer", _INSTEAD)
