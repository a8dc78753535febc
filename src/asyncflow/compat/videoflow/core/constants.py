"""videoflow's ``videoflow.core.constants``: flow types, device types, and two kept for imports.

``BATCH`` and ``REALTIME`` are asyncflow's :class:`~asyncflow.core.FlowType`
members, which compare equal to videoflow's strings ``"batch"`` and
``"realtime"``.  ``STOP_SIGNAL`` (videoflow's in-band end marker) and
``LOGGING_LEVEL`` keep videoflow's values so that imports work, but asyncflow uses
neither: its end marker is its own (a node never receives one, as in videoflow),
and its log level is ``flow_options["log_level"]`` (asyncflow is quiet by default).
"""

from __future__ import annotations

import logging

from asyncflow.core.constants import BATCH, REALTIME, FlowType

__all__ = ["BATCH", "CPU", "DEVICE_TYPES", "FLOW_TYPES", "GPU", "LOGGING_LEVEL", "REALTIME", "STOP_SIGNAL"]

FLOW_TYPES: list[FlowType] = [BATCH, REALTIME]

GPU = "gpu"
CPU = "cpu"
DEVICE_TYPES: list[str] = [CPU, GPU]

#: videoflow's end-of-stream marker; asyncflow's engine neither sends nor looks for it.
STOP_SIGNAL = "alalsl;'sdlfj2389jdalskmghsaiaw98y8asdf;askljoa8y;dsf;lkasdb"

#: videoflow's log level (INFO); asyncflow's is ``flow_options["log_level"]``.
LOGGING_LEVEL = logging.INFO
