"""What a task process is given (``TaskSpec``) and what it reports back."""

from __future__ import annotations

import pickle
import socket
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.constants import FlowType
from ..core.graph import Stage
from ..core.options import FlowOptions
from .pipes import PipeEnd

__all__ = [
    "DROP_CAUSES",
    "TaskFailure",
    "TaskSpec",
    "TaskStats",
    "charged_drops",
    "describe_failure",
    "percentile",
    "unsendable_error",
]


@dataclass(frozen=True)
class TaskSpec:
    """Everything a child needs to run one task: one picklable value (spawn sends it)."""

    name: str  # "node" or "node[i]" for worker i of nb_tasks
    stage: Stage
    worker: int
    flow_type: FlowType
    options: FlowOptions
    control: socket.socket
    source: str = ""  # the node whose rows this task receives ("" for none)
    inputs: tuple[PipeEnd, ...] = ()  # from each worker of the source stage
    in_positional: bool = True
    #: One group per target stage (``Stage.targets``): the pipes to each of its workers.
    outputs: tuple[tuple[PipeEnd, ...], ...] = ()
    out_columns: tuple[tuple[int, ...], ...] = ()  # the columns of our rows each target gets
    out_targets: tuple[str, ...] = ()  # each target's node name (REALTIME drops are charged to it)
    out_positional: bool = True
    #: REALTIME, after the workers of an ordered ``nb_tasks`` node: its name (rows that
    #: come back out of capture order are dropped and charged to it).
    order_of: str | None = None
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
    dropped: int = 0  # rows this task dropped (REALTIME, max_age): the sum of ``drops``
    sent: int = 0  # rows handed downstream
    busy_seconds: float = 0.0  # time inside the node's methods
    wall_seconds: float = 0.0  # time since the task started streaming
    queued: int = 0  # rows waiting in this task's input buffer
    #: Recent seconds per item (at most 256); for a fast node, the mean over each chunk of items.
    samples: list[float] = field(default_factory=list, repr=False)
    finished: bool = False  # the task has ended
    #: Drops this task counted, by the node that lost the items and by cause (``DROP_CAUSES``):
    #: ``{"detector": {"full": 12, "stale": 3}}``.  A drop is charged to the node that did
    #: not get (or did not finish) the item, whichever process saw it happen.
    drops: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Recent item ages (s, at most 256): from the producer's emission to this task's node
    #: starting on the item.  Exact per item where frames hold one item (REALTIME's
    #: default); with bigger frames, the age of the oldest item of each frame.
    ages: list[float] = field(default_factory=list, repr=False)
    age_max: float = 0.0  # the oldest item this task's node started on (s)
    aged: int = 0  # items whose age was measured

    def age_percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the recent item ages, in seconds."""
        return percentile(self.ages, q)

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
        return percentile(self.samples, q)


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples`` (nearest rank), 0.0 for none."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


#: Why an item was dropped: ``"full"`` (REALTIME: the node's input queue was full and a
#: newer item took its place), ``"stale"`` (older than ``max_age`` when the node would
#: have started on it), ``"order"`` (REALTIME, ``nb_tasks > 1``: a worker finished it
#: after a newer item had been passed on).
DROP_CAUSES: tuple[str, ...] = ("full", "stale", "order")


def charged_drops(stats: Iterable[Any]) -> dict[str, dict[str, int]]:
    """Drops by the node they are charged to, then by cause, summed over tasks' ``TaskStats.drops``.

    Stats without ``drops`` (the Ray engine's) count nothing here.
    """
    charged: dict[str, dict[str, int]] = {}
    for task in stats:
        for node, causes in (getattr(task, "drops", None) or {}).items():
            into = charged.setdefault(node, {})
            for cause, count in causes.items():
                if count:
                    into[cause] = into.get(cause, 0) + int(count)
    return charged


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
