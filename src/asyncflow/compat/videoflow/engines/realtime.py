"""videoflow's ``videoflow.engines.realtime``: names only (``Flow(..., flow_type=REALTIME)`` is asyncflow's)."""

from __future__ import annotations

from .._unavailable import Unavailable
from ..utils.system import get_gpus_available_to_process

__all__ = ["RealtimeExecutionEngine", "RealtimeQueueMessenger", "get_gpus_available_to_process"]


class RealtimeQueueMessenger(Unavailable):
    """videoflow's engine internal: not available (building one raises)."""


class RealtimeExecutionEngine(Unavailable):
    """videoflow's engine internal: not available (building one raises)."""
