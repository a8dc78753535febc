"""videoflow's ``videoflow.core.constants``: flow types and device types.

``BATCH`` and ``REALTIME`` are asyncflow's :class:`~asyncflow.core.FlowType`
members, which compare equal to videoflow's strings ``"batch"`` and
``"realtime"``.  videoflow's ``STOP_SIGNAL`` (its in-band end marker) and
``LOGGING_LEVEL`` have no counterpart: asyncflow's end marker is internal, and its
log level is ``flow_options["log_level"]``.
"""

from __future__ import annotations

from asyncflow.core.constants import BATCH, REALTIME, FlowType

__all__ = ["BATCH", "CPU", "DEVICE_TYPES", "FLOW_TYPES", "GPU", "REALTIME"]

FLOW_TYPES: list[FlowType] = [BATCH, REALTIME]

GPU = "gpu"
CPU = "cpu"
DEVICE_TYPES: list[str] = [CPU, GPU]
