"""videoflow's ``videoflow.engines``: its process engines, kept as names only.

``batch`` (``BatchExecutionEngine``, ``BatchprocessingQueueMessenger``), ``realtime``
(``RealtimeExecutionEngine``, ``RealtimeQueueMessenger``) and ``task_functions`` were
the internals ``Flow`` ran on.  asyncflow's engine replaces them: ``Flow(...,
flow_type=BATCH)`` or ``REALTIME`` picks its behaviour.  Using any of these names
raises :class:`~asyncflow.compat.videoflow._unavailable.NotAvailableError` (a
``NotImplementedError``) saying so.
"""

from __future__ import annotations

from . import batch, realtime, task_functions

__all__ = ["batch", "realtime", "task_functions"]
