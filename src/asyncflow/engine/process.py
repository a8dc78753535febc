"""One task, one OS process: a thin layer over ``aiomultiprocess.Process``.

Why ``Process`` and not ``Pool`` or ``Worker``: a ``Pool`` schedules many
coroutines onto a few processes, and the contract is one long-lived process per
task; a ``Worker`` returns its result through aiomultiprocess's shared
``Manager``, a process that outlives every flow.  ``Process`` gives exactly one
child that runs one coroutine on an event loop built by ``loop_initializer``
(uvloop here).  Its constructor always asks the Manager for a ``Namespace``, so
``TaskProcess`` builds the same ``Unit`` without one (a task reports back over its
control socket instead) and reuses ``Process.run_async`` as the child's entry.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
from typing import Any

import aiomultiprocess
import uvloop
from aiomultiprocess.types import Unit

from .spec import TaskSpec
from .task import run_task

__all__ = ["TaskProcess", "get_context"]

_PR_SET_PDEATHSIG = 1


def _child_init(parent_pid: int, log_level: int | None, device: str | None) -> None:
    """Runs in the child before the task: signals, parent-death link, logging, GPU."""
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    # Ctrl-C in a terminal reaches the whole process group; the parent decides
    # how the flow stops, so the children do not react to SIGINT themselves.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(70)  # the parent died before we could link our fate to it
    # Records go to the parent (see logs.py), which logs them with its own handlers.
    logging.getLogger().setLevel(log_level if log_level is not None else logging.WARNING)


def get_context(start_method: str) -> multiprocessing.context.BaseContext:
    """The multiprocessing context for ``flow_options["start_method"]``."""
    return multiprocessing.get_context(start_method)


class TaskProcess(aiomultiprocess.Process):
    """The process that runs one task (see the module docstring for why this shape)."""

    def __init__(self, spec: TaskSpec, context: multiprocessing.context.BaseContext) -> None:
        # Deliberately not calling super().__init__(): it would start the Manager.
        self.spec = spec
        self.unit = Unit(
            target=run_task,
            args=(spec,),
            kwargs={},
            namespace=None,
            initializer=_child_init,
            initargs=(os.getpid(), spec.options.log_level, spec.device),
            loop_initializer=uvloop.new_event_loop,
        )
        self.aio_process: Any = context.Process(  # type: ignore[attr-defined]
            target=aiomultiprocess.Process.run_async,
            args=(self.unit,),
            name=f"asyncflow:{spec.name}",
            daemon=False,
        )

    @property
    def sentinel(self) -> int:
        """A file descriptor that becomes readable when the process ends."""
        return int(self.aio_process.sentinel)
