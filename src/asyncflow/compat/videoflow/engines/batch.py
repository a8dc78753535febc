"""videoflow's ``videoflow.engines.batch``: names only (``Flow(..., flow_type=BATCH)`` is asyncflow's batch engine)."""

from __future__ import annotations

from .._unavailable import Unavailable

__all__ = ["BatchExecutionEngine", "BatchprocessingQueueMessenger"]


class BatchprocessingQueueMessenger(Unavailable):
    """videoflow's engine internal: not available (building one raises)."""


class BatchExecutionEngine(Unavailable):
    """videoflow's engine internal: not available (building one raises)."""
