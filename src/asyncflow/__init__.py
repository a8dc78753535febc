"""asyncflow: streaming pipelines of nodes, one OS process per task, driven by asyncio.

    from asyncflow.core import Flow
    from asyncflow.producers import IntProducer
    from asyncflow.processors import IdentityProcessor
    from asyncflow.consumers import CommandlineConsumer

    A = IntProducer(0, 40, 0.1)
    B = IdentityProcessor()(A)
    C = CommandlineConsumer()(B)
    await Flow([A], [C]).run()     # or asyncflow.run(Flow([A], [C])) in a script
"""

from .core import (
    BATCH,
    REALTIME,
    STOP_FLOW,
    ConsumerNode,
    Flow,
    FlowError,
    FlowKilledError,
    FlowOptions,
    FlowType,
    GraphError,
    NodeConfigError,
    NodeFailedError,
    ProcessorNode,
    ProducerNode,
    WorkerDiedError,
)
from .runner import run

__version__ = "0.1.0"

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
    "NodeConfigError",
    "NodeFailedError",
    "ProcessorNode",
    "ProducerNode",
    "WorkerDiedError",
    "__version__",
    "run",
]
