"""What a task process is given (``TaskSpec``) and what it reports back."""

from __future__ import annotations

import pickle
import socket
import traceback
from dataclasses import dataclass, field
from typing import Any

from ..core.constants import FlowType
from ..core.graph import Stage
from ..core.options import FlowOptions
from .pipes import PipeEnd

__all__ = ["TaskFailure", "TaskSpec", "TaskStats", "describe_failure", "unsendable_error"]


@dataclass(frozen=True)
class TaskSpec:
    """Everything a child needs to run one task: one picklable value (spawn sends it)."""

    name: str  # "node" or "node[i]" for worker i of nb_tasks
    stage: Stage
    worker: int
    flow_type: FlowType
    options: FlowOptions
    control: socket.socket
    inputs: tuple[PipeEnd, ...] = ()
    in_positional: bool = True
    outputs: tuple[PipeEnd, ...] = ()
    out_positional: bool = True
    #: CUDA_VISIBLE_DEVICES for this task's process (None: leave it as inherited).
    device: str | None = None
    #: For FeedProducer / ResultsConsumer: the channel to the parent process.
    host_link: socket.socket | None = None

    @property
    def node_name(self) -> str:
        return self.stage.node.name


@dataclass
class TaskStats:
    """What a task has done so far: sent to the parent every ``stats_interval`` and at the end."""

    received: int = 0  # rows taken from upstream
    processed: int = 0  # rows the node ran on (next/process/consume returned)
    skipped: int = 0  # rows dropped by on_error="skip"
    dropped: int = 0  # rows dropped by a full REALTIME queue
    sent: int = 0  # rows handed downstream
    busy_seconds: float = 0.0  # time inside the node's methods
    wall_seconds: float = 0.0  # time since the task started streaming
    queued: int = 0  # rows waiting in this task's input buffer
    #: Recent seconds per item (at most 256); for a fast node, the mean over each chunk of items.
    samples: list[float] = field(default_factory=list, repr=False)
    finished: bool = False  # the task has ended

    @property
    def busy_fraction(self) -> float:
        """Share of the task's time spent inside its node (the rest is waiting)."""
        return self.busy_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def mean_seconds(self) -> float:
        """Mean time per item inside the node."""
        return self.busy_seconds / self.processed if self.processed else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the recent per-item times, in seconds."""
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class TaskFailure:
    """An exception in a task, as the child reports it."""

    task: str
    node: str
    node_type: str
    phase: str  # open / next / process / consume / close / send / receive
    summary: str  # "ValueError: boom"
    traceback: str
    exception: bytes | None = field(default=None, repr=False)  # the pickled exception, if it pickles


def describe_failure(exc: BaseException, *, task: str, node: Any, phase: str) -> TaskFailure:
    """A ``TaskFailure`` for ``exc`` raised by ``node`` (the exception pickled if it round-trips)."""
    pickled: bytes | None
    try:
        pickled = pickle.dumps(exc, protocol=5)
        pickle.loads(pickled)
    except Exception:
        pickled = None
    return TaskFailure(
        task=task,
        node=node.name,
        node_type=type(node).__name__,
        phase=phase,
        summary=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
        exception=pickled,
    )


def unsendable_error(node: Any, exc: Exception) -> TypeError:
    """The error for an output of ``node`` that cannot be sent on (``exc``: what pickling raised)."""
    wrapped = TypeError(f"output of {node.describe()} cannot be sent to the next task: {exc}")
    wrapped.__cause__ = exc
    return wrapped
