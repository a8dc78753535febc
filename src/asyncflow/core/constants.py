"""Flow types and the in-band markers that travel the graph."""

from __future__ import annotations

import enum

__all__ = ["BATCH", "REALTIME", "STOP_FLOW", "FlowType", "StopFlow"]


class FlowType(enum.StrEnum):
    """How a flow treats a full queue.

    ``BATCH`` waits (backpressure: nothing is ever dropped); ``REALTIME`` drops the
    oldest waiting item so a live source never waits.  Members compare equal to
    their strings, so ``"batch"`` and ``"realtime"`` work wherever a type is taken.
    """

    BATCH = "batch"
    REALTIME = "realtime"


BATCH = FlowType.BATCH
REALTIME = FlowType.REALTIME


class StopFlow(enum.Enum):
    """Type of :data:`STOP_FLOW`; an enum so that it stays a singleton across pickling."""

    STOP_FLOW = "STOP_FLOW"

    def __repr__(self) -> str:
        return "STOP_FLOW"


#: The end-of-stream signal: it travels every channel behind the data, and a task
#: that receives it closes its node, passes it on and exits.
STOP_FLOW = StopFlow.STOP_FLOW
