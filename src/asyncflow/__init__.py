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

from typing import Any

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
from .core import flow as _flow
from .runner import run

__version__ = "0.2.0"


def _live_display(flow: Flow, run: Any) -> Any:
    """``flow_options["progress"]``: the monitor's live table around the run (imported when used)."""
    from .monitor.live import LiveDisplay

    return LiveDisplay(flow).run_until(run)


_flow.set_progress_display(_live_display)


def __getattr__(name: str) -> Any:
    # Imported when first used: every task process imports this package.
    if name == "Pool":
        from .engine.pool import Pool

        return Pool
    raise AttributeError(f"module 'asyncflow' has no attribute {name!r}")

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
    "Pool",
    "ProcessorNode",
    "ProducerNode",
    "WorkerDiedError",
    "__version__",
    "run",
]
