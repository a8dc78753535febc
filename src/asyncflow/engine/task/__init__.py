"""The loop a child process runs for one task: open, stream rows, close, report.

Messages on the control link, child -> parent: ``("ready",)`` once ``open()``
returned, ``("stats", TaskStats)`` every half second, ``("log", record)`` for what
the process logs (see ``logs.py``), ``("error", TaskFailure)``, and
``("done", TaskStats)`` at the end.  Parent -> child:
``("go",)`` (producers start emitting once every task is ready) and
``("stop",)`` (producers stop emitting; ``STOP_FLOW`` then travels the graph).
If the control link breaks, the parent is gone and the task exits at once.

The task's code, along the data's path: ``rows.py`` (the task's state, control and
the rows of one block: fixing a node's outputs and sending them), ``producing.py``
(the producer's loop), ``transforming.py`` (the processor's and consumer's loop),
``runner.py`` (set-up, the run from ``open()`` to ``done``, host channels, the
process's entry point ``run_task``), ``common.py`` (what they share).
"""

from .common import compile_build
from .runner import TaskRunner, run_task

__all__ = ["TaskRunner", "compile_build", "run_task"]
