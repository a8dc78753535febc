"""videoflow's ``videoflow.core``: ``Flow`` and the node base classes.

videoflow also exported its ``Task`` classes here; they were its engine's
internals and have no counterpart (asyncflow's engine runs the nodes).
"""

from __future__ import annotations

from . import constants, flow, node
from .flow import Flow
from .node import ConsumerNode, FunctionProcessorNode, Node, ProcessorNode, ProducerNode

__all__ = [
    "ConsumerNode",
    "Flow",
    "FunctionProcessorNode",
    "Node",
    "ProcessorNode",
    "ProducerNode",
    "constants",
    "flow",
    "node",
]
