"""The exceptions asyncflow raises: ``FlowError`` at the root."""

from __future__ import annotations

__all__ = [
    "FlowError",
    "FlowKilledError",
    "GraphError",
    "NodeConfigError",
    "NodeFailedError",
    "WorkerDiedError",
]


class FlowError(Exception):
    """Raised by ``Flow.run()`` when a flow ends because something went wrong.

    ``node`` is the name of the node at fault (``None`` when the fault is the
    engine's own), ``task`` the name of its task (``"node[2]"`` for the third of
    ``nb_tasks`` workers).  When the fault was an exception inside a node, it is
    chained as ``__cause__`` and the child's traceback text is part of the message.
    """

    def __init__(self, message: str, *, node: str | None = None, task: str | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.task = task


class NodeFailedError(FlowError):
    """Raised when a node's ``open``, ``next``, ``process``, ``consume`` or ``close``
    raised, or its output could not be sent (for instance, it does not pickle)."""


class WorkerDiedError(FlowError):
    """Raised when a task's process exited without saying goodbye: killed by a
    signal, a segfault, ``os._exit``.  ``exitcode`` is the process's exit status
    (negative: the signal number)."""

    def __init__(
        self, message: str, *, node: str | None = None, task: str | None = None, exitcode: int | None = None
    ) -> None:
        super().__init__(message, node=node, task=task)
        self.exitcode = exitcode


class FlowKilledError(FlowError):
    """Raised when tasks had to be ended hard: ``stop(timeout=...)`` expired or a
    second Ctrl-C arrived.  ``killed`` names the tasks that were still running."""

    def __init__(self, message: str, *, killed: tuple[str, ...] = ()) -> None:
        super().__init__(message, node=killed[0] if killed else None)
        self.killed = killed


class GraphError(ValueError):
    """Raised by ``Flow()`` when the graph is not one asyncflow can run: a cycle,
    a consumer not reachable from the producers, a node listed twice, a node that
    cannot be sent to its process.  A ``ValueError``, as the contract says."""


class NodeConfigError(TypeError, ValueError):
    """Raised when a node is built with a bad argument (``nb_tasks=0``, ``"2"``,
    ``on_error="ignore"``) or wired wrongly.  It is both a ``TypeError`` and a
    ``ValueError`` so callers may catch either: the value's type or the value
    itself can be what is wrong."""
