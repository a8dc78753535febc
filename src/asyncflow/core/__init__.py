"""The graph builder and the ``Flow`` facade."""

from .constants import BATCH, REALTIME, STOP_FLOW, FlowType
from .errors import FlowError, FlowKilledError, GraphError, NodeConfigError, NodeFailedError, WorkerDiedError
from .flow import Flow
from .node import ConsumerNode, Node, ProcessorNode, ProducerNode
from .options import FlowOptions

__all__ = [
    "BATCH",
    "REALTIME",
    "STOP_FLOW",
    "ConsumerNode",
    "Flow",
    "FlowError",
    "FlowKilledError",
    "FlowOptions",
    "FlowType",
    "GraphError",
    "Node",
    "NodeConfigError",
    "NodeFailedError",
    "ProcessorNode",
    "ProducerNode",
    "WorkerDiedError",
]
