"""videoflow's ``videoflow.core.task``: its engine's task classes, kept as names only.

videoflow wrapped each node in a ``Task`` that its process engine ran; asyncflow's
engine runs the nodes itself.  The names are here so that imports keep working;
building one raises :class:`~asyncflow.compat.videoflow._unavailable.NotAvailableError`
(a ``NotImplementedError``) saying to build nodes and a ``Flow`` instead.
"""

from __future__ import annotations

from .._unavailable import Unavailable

__all__ = [
    "ConsumerTask",
    "MultiprocessingOutputTask",
    "MultiprocessingProcessorTask",
    "MultiprocessingReceiveTask",
    "MultiprocessingTask",
    "NodeTask",
    "ProcessorTask",
    "ProducerTask",
    "Task",
]


class Task(Unavailable):
    """videoflow's engine internal: not available (building one raises)."""


class NodeTask(Task):
    """videoflow's engine internal: not available (building one raises)."""


class ProducerTask(NodeTask):
    """videoflow's engine internal: not available (building one raises)."""


class ProcessorTask(NodeTask):
    """videoflow's engine internal: not available (building one raises)."""


class ConsumerTask(NodeTask):
    """videoflow's engine internal: not available (building one raises)."""


class MultiprocessingTask(Task):
    """videoflow's engine internal: not available (building one raises)."""


class MultiprocessingReceiveTask(MultiprocessingTask):
    """videoflow's engine internal: not available (building one raises)."""


class MultiprocessingProcessorTask(MultiprocessingTask):
    """videoflow's engine internal: not available (building one raises)."""


class MultiprocessingOutputTask(MultiprocessingTask):
    """videoflow's engine internal: not available (building one raises)."""
