"""videoflow's ``videoflow.core.engine``: the interfaces of its process engine, kept as names only.

``Messenger`` and ``ExecutionEngine`` were videoflow's engine internals; asyncflow's
engine replaces them.  Building one raises
:class:`~asyncflow.compat.videoflow._unavailable.NotAvailableError` (a
``NotImplementedError``) saying to build nodes and a ``Flow`` instead.
"""

from __future__ import annotations

from .._unavailable import Unavailable

__all__ = ["ExecutionEngine", "Messenger"]


class Messenger(Unavailable):
    """videoflow's engine internal: not available (building one raises)."""


class ExecutionEngine(Unavailable):
    """videoflow's engine internal: not available (building one raises)."""
