"""videoflow's ``videoflow.core``: ``Flow``, the node base classes, and its submodules.

As in videoflow: ``Flow``, ``Node``, ``ProducerNode``, ``ProcessorNode``,
``ConsumerNode``, ``FunctionProcessorNode``, ``LOGGING_LEVEL``, and the ``Task``
names; the submodules ``flow``, ``node``, ``constants``, ``graph`` (``GraphEngine``),
``bottlenecks``, ``processor``, ``task`` and ``engine``.  videoflow's ``Task``
classes were its engine's internals: asyncflow's engine runs the nodes, so
building one raises ``NotImplementedError`` (see :mod:`.task`).  Unlike videoflow,
importing this package adds no log handler: asyncflow logs through the
``"asyncflow"`` logger, quiet unless ``flow_options["log_level"]`` says otherwise.
"""

from __future__ import annotations

from . import bottlenecks, constants, engine, flow, graph, node, processor, task
from .constants import LOGGING_LEVEL
from .flow import Flow
from .node import ConsumerNode, FunctionProcessorNode, Node, ProcessorNode, ProducerNode
from .task import ConsumerTask, ProcessorTask, ProducerTask, Task

__all__ = [
    "LOGGING_LEVEL",
    "ConsumerNode",
    "ConsumerTask",
    "Flow",
    "FunctionProcessorNode",
    "Node",
    "ProcessorNode",
    "ProcessorTask",
    "ProducerNode",
    "ProducerTask",
    "Task",
    "bottlenecks",
    "constants",
    "engine",
    "flow",
    "graph",
    "node",
    "processor",
    "task",
]
