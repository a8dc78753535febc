"""The Ray engine: the same linearized flow, one Ray actor per task.

The driver (this scheduler, on the caller's event loop) asks the producers for
batches of rows and submits each batch through the chain as actor calls, passing
each call's rows ``ObjectRef`` straight to the next stage's actor, so that rows
move from actor to actor through Ray's object store, never through the driver's
Python code.  Every call also returns a small ``Report`` (rows, bytes, stats, a
failure) that the driver watches through the ref's future.

- Order: a stage with ``nb_tasks=N`` has N actors that take batches in turn.  A
  Ray actor runs the calls of one submitter in submission order, so the next
  single-task stage takes the batches back in order by itself.  After a stage with
  ``ordered=False`` the rest of the chain is submitted when that stage has finished
  the batch: batches go on as they complete.
- Shares: in front of an ``nb_tasks`` stage of N workers, the last producer cuts
  each batch it hands over into up to N consecutive parts of nearly equal size (at
  most ``max(1, min(queue_size, batch_size) // 2N)`` rows each), and each part goes down the
  chain as a batch of its own, dealt to the workers in turn.  A fast producer fills
  its whole batch before any worker has started; uncut, a small run went to one
  worker.
- Backpressure (BATCH): at most ``queue_size`` rows per hop (and
  ``max_bytes_in_flight`` bytes per hop) are in flight behind the producers, and at
  most two producer calls are outstanding.  Batches hold ``batch_size`` rows (N
  parts in front of an ``nb_tasks`` stage, see above), and a producer hands over
  what it has after ``flush_interval`` (at least 5 ms).  A hop of an ``nb_tasks``
  stage has room for one part per worker at least, whatever ``queue_size``.
- REALTIME: producers are called whatever the window; produced batches that find
  it full wait, at most ``queue_size`` rows of them, and the oldest waiting batch is
  dropped (counted as the last producer's ``dropped``) in favour of the newest.
  With REALTIME's defaults (``queue_size=1``, ``batch_size=1``) every batch is one
  row, and the window holds one row per hop, one per worker on an ``nb_tasks`` hop:
  each free worker gets a row, as on the local engine.
- Several producers: a batch starts at the first producer that has not ended and
  passes through the producers after it, each zipping one item onto each row.
- Batches: ``batch_size`` rows, ``queue_size`` rows per hop; left at BATCH's
  defaults (512, 1024) they are 16384 and 32768 on Ray, where an actor call costs
  about a millisecond (``benchmarks/ray_row.py``, 1 M tiny items: 131 k/s with the
  local engine's sizes, 0.7-0.9 M/s with 4096/8192, 2.2-2.3 M/s with these).
- Host nodes: the driver runs ``FeedProducer`` and ``ResultsConsumer`` itself (the
  application's side is in its process): the feed, which must be the first
  producer, is read into batches by the driver (``put()`` waits while
  ``queue_size`` items wait); a ``ResultsConsumer``'s rows are fetched by the
  driver and handed to ``flow.results()`` in the chain's order, the batch staying
  in flight while ``queue_size`` items wait for a reader (backpressure).

Stopping follows docs/design.md#stop-protocol: producers are not asked for more (an
async ``next()`` that waits is interrupted: ``interrupt`` runs in a concurrency group
of its own; a feed ends behind the items ``put()`` accepted), the batches in flight
finish, every actor closes its node, then the actors are killed and a Ray the flow
started itself is shut down.  Errors: a node's exception (reported, with
the rows before it passed on) → ``NodeFailedError``; a dead actor →
``WorkerDiedError`` (naming every task of a Ray node that left the cluster); a node
class the worker cannot import → ``NodeFailedError`` naming the module;
``stop(timeout)`` expiry or a second cancel → actors killed → ``FlowKilledError``.
After an error the other tasks get ``stop_timeout`` seconds to finish before they
are killed.

Placement: each actor reserves ``resources`` of its node if given, else a share of a
CPU (``cpu_share``: one CPU each when the cluster has that many, else the largest
``1/k`` that places the whole flow) and a GPU for a GPU task; Ray places the actors.
A flow that no cluster node (or the whole cluster) could ever hold fails before any
actor is created, naming what is missing.  Each task's Ray node is known once it
opened.

Ray itself: with ``ray_address`` the flow connects to that cluster; without it,
``ray.init()`` finds ``RAY_ADDRESS`` or starts a local Ray.  Either way the
connection is made in a thread of its own that lives until the last flow using it
ends and then calls ``ray.shutdown()``: Ray's daemons die with the thread that
spawned them (``PR_SET_PDEATHSIG``), and ``ray.init`` called off the main thread
leaves the application's SIGTERM handler alone.  A Ray that was already
initialized when the flow started is used and left running.  A Ray the flow
connects itself gets a runtime environment: ``flow_options["ray_runtime_env"]``
plus the driver's own import folders in ``PYTHONPATH`` (``_import_path``); on a
Ray the application started, each actor gets ``ray_runtime_env`` if given.

Rows and arrays: see ``ray_actor`` (batches as columns; big numpy arrays with one
copy, read-only views downstream) and ``ray_slots`` (``_share``: a task whose later
tasks all run on its Ray node puts its arrays in shared slots of its own, which the
``SlotLedger`` hands back once nothing reads them; other arrays go through Ray's
object store).  The ``max_bytes_in_flight`` budget is an estimate from the
producers' items.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import os
import pickle
import site
import sys
import sysconfig
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..core.constants import REALTIME, STOP_FLOW, FlowType
from ..core.errors import FlowError, FlowKilledError, NodeFailedError, WorkerDiedError
from ..core.graph import ABSENT, Stage
from ..core.host import FeedProducer, HostChannel, ResultsConsumer
from ..core.node import Node, ProducerNode
from ..core.options import FlowOptions
from .channel import EMPTY, BrokenChannelError
from .devices import assign_devices
from .ray_actor import (
    FIXED,
    Known,
    LoadFailure,
    Pickled,
    Report,
    Rows,
    TaskRunnerActor,
    _flags_of,
    _is_end,
    _size,
    assemble,
    fix,
    load,
)
from .ray_slots import SlotGroup, SlotLedger, SlotRef
from .scheduler import RemoteTraceback
from .spec import TaskFailure, TaskStats, describe_failure
from .stopping import StopControl

try:
    import ray
    from ray.exceptions import RayActorError, RayTaskError
except ImportError as exc:  # pragma: no cover - scheduler_for() turns this into a clear message
    raise ImportError("the Ray engine needs Ray: pip install 'asyncflow[ray]'") from exc

__all__ = ["RayScheduler", "cpu_share"]

log = logging.getLogger("asyncflow.ray")

_PRODUCE_AHEAD = 2  # producer calls outstanding at once
_MIN_BUDGET = 0.005  # seconds a producer call may spend filling a batch, at least
_DEATH_WAIT = 3.0  # seconds to wait for Ray to confirm that killed actors are gone
_DROP_WAIT = 1.0  # seconds an actor with shared slots gets to unlink them before it is killed
_PLACEMENT_WARNING = 15.0  # seconds after which tasks Ray has not started yet are named in a warning
_SPECIAL = ("CPU", "GPU", "memory")  # resources that ray.remote takes as arguments of their own
#: BATCH's queue_size and batch_size when flow_options leaves them out (parse_options' defaults).
_BATCH_DEFAULTS = (FlowOptions.queue_size, min(FlowOptions.batch_size, FlowOptions.queue_size // 2))
_RAY_QUEUE_SIZE, _RAY_BATCH_SIZE = 32 * 1024, 16 * 1024  # Ray's instead (see "Batches" above)


# -- the Ray connection, shared by the flows of this process --------------------------
class _Keeper(threading.Thread):
    """Calls ``ray.init``, then lives until told to call ``ray.shutdown`` (see the module docstring)."""

    def __init__(self, address: str | None, runtime_env: dict[str, Any] | None, folders: list[str]) -> None:
        super().__init__(name="asyncflow-ray", daemon=True)
        self.address = address
        self.runtime_env = runtime_env  # with the driver's import folders in PYTHONPATH
        self.folders = folders
        self.ready = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        quiet = _NoSigtermWarning()
        logging.getLogger("ray").addFilter(quiet)
        logging.getLogger("ray._private.worker").addFilter(quiet)
        try:
            if self.address is None and self.folders and _starts_local_ray():
                # A new Ray on this machine: its daemons, and so its workers, inherit PYTHONPATH
                # from us, which spares each actor a runtime environment (2-3 s of start-up
                # for 7 actors on the development machine: workers Ray starts ahead cannot take one).
                with _pythonpath(self.folders):
                    ray.init(include_dashboard=False, configure_logging=False, runtime_env=self.user_env())
            elif self.address is None:
                ray.init(include_dashboard=False, configure_logging=False, runtime_env=self.runtime_env)
            else:
                ray.init(address=self.address, runtime_env=self.runtime_env)
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            return
        finally:
            logging.getLogger("ray").removeFilter(quiet)
            logging.getLogger("ray._private.worker").removeFilter(quiet)
        self.ready.set()
        self.release.wait()
        try:
            ray.shutdown()
        except Exception:
            log.warning("ray.shutdown() failed", exc_info=True)


    def user_env(self) -> dict[str, Any] | None:
        """``runtime_env`` without the driver's import folders (they travel otherwise)."""
        env = dict(self.runtime_env or {})
        env_vars = dict(env.get("env_vars") or {})
        path = [p for p in env_vars.get("PYTHONPATH", "").split(os.pathsep) if p not in self.folders]
        if path == ["${PYTHONPATH}"]:
            path = []
        if path:
            env_vars["PYTHONPATH"] = os.pathsep.join(path)
        else:
            env_vars.pop("PYTHONPATH", None)
        if env_vars:
            env["env_vars"] = env_vars
        else:
            env.pop("env_vars", None)
        return env or None


def _starts_local_ray() -> bool:
    """Whether ``ray.init()`` without an address will start a new Ray here (not join a running one)."""
    if os.environ.get("RAY_ADDRESS"):
        return False
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(None) is None  # type: ignore[arg-type]
    except Exception:  # Ray's internals moved: the runtime environment carries the folders
        return False


@contextlib.contextmanager
def _pythonpath(folders: list[str]) -> Iterator[None]:
    """``folders`` in front of ``PYTHONPATH`` while a new Ray's daemons start (then as it was)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*folders, *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


class _NoSigtermWarning(logging.Filter):
    """Ray warns that it sets no SIGTERM handler off the main thread: that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("SIGTERM handler is not set")


_ray_lock = threading.Lock()
_ray_users = 0
_ray_keeper: _Keeper | None = None


def _acquire_ray(address: str | None, runtime_env: dict[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
    """Use the Ray this process is connected to, or connect (blocking: run it in a thread).

    Returns whether a flow started (or connected) that Ray, and the runtime environment
    it was given then (each actor of a flow that wants another one gets its own).
    """
    global _ray_users, _ray_keeper
    with _ray_lock:
        if not ray.is_initialized():
            keeper = _Keeper(address, runtime_env, _import_path())
            keeper.start()
            keeper.ready.wait()
            if keeper.error is not None:
                keeper.join()
                target = f"the Ray cluster at {address!r}" if address else "Ray"
                raise FlowError(f"the Ray engine could not start or reach {target}: {keeper.error}") from keeper.error
            _ray_keeper = keeper
        _ray_users += 1
        if _ray_keeper is None:
            return False, None
        return True, _ray_keeper.runtime_env


def _release_ray() -> None:
    """The last flow to leave a Ray that a flow started shuts it down (blocking)."""
    global _ray_users, _ray_keeper
    with _ray_lock:
        _ray_users -= 1
        if _ray_users > 0 or _ray_keeper is None:
            return
        keeper, _ray_keeper = _ray_keeper, None
        keeper.release.set()
        keeper.join()


_CONTROL = "control"  # the actors' concurrency group for interrupt(), beside a running produce()


@functools.cache
def _remote_class() -> Any:
    # The default group runs one call at a time, in submission order; "control" has a thread of its own.
    return ray.remote(concurrency_groups={_CONTROL: 1})(TaskRunnerActor)  # type: ignore[call-overload]


def _import_path() -> list[str]:
    """The driver's ``sys.path`` folders that exist and are not part of the Python installation.

    A worker runs the same Python with its own standard library and site-packages, but
    not the folders the application put on ``sys.path`` itself (Ray adds only the
    script's folder and the current one): those travel in ``PYTHONPATH``.
    """
    installed: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            installed.add(os.path.realpath(path))
    try:
        installed.update(os.path.realpath(p) for p in site.getsitepackages())
        installed.add(os.path.realpath(site.getusersitepackages()))
    except Exception:  # a virtualenv's old site module may lack them
        pass
    found: list[str] = []
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        path = os.path.abspath(entry or os.curdir)
        real = os.path.realpath(path)
        if path in found or not os.path.isdir(path):
            continue
        if any(real == top or real.startswith(top + os.sep) for top in installed):
            continue
        found.append(path)
    return found


def _runtime_env(options: FlowOptions) -> dict[str, Any] | None:
    """What the flow hands Ray: ``ray_runtime_env``, the driver's import folders added to ``PYTHONPATH``."""
    env = dict(options.ray_runtime_env or {})
    folders = _import_path()
    if folders:
        env_vars = dict(env.get("env_vars") or {})
        parts = [env_vars["PYTHONPATH"]] if env_vars.get("PYTHONPATH") else []
        env_vars["PYTHONPATH"] = os.pathsep.join([*parts, *folders, "${PYTHONPATH}"])  # Ray expands ${...}
        env["env_vars"] = env_vars
    return env or None


# -- host nodes: the driver runs them ---------------------------------------------------------
class _FeedLink(HostChannel):
    """A ``FeedProducer``'s feed on Ray, both ends in the driver.

    The user's node puts through it (``send_many`` / ``send_stop``: what
    ``FeedProducer._attach`` expects of a sender); the driver's copy of the node reads
    it in its ``next()`` (``recv``: this is the copy's ``_host``).  ``put()`` waits
    while ``capacity`` rows wait to be produced.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows: deque[Any] = deque()
        self.ended = False  # send_stop(): the host ended the stream
        self.closed = False  # the run is over: put() fails
        self.known: Known = {}  # arrays read back by recv(): the batch that holds them passes them on as they are
        self._changed = asyncio.Event()

    def freeze(self, row: tuple[Any, ...]) -> Any:
        return fix(row[0])  # put() has returned: the host may change the item now

    async def send_many(self, rows: list[Any]) -> None:
        while len(self.rows) >= self.capacity and not self.closed:
            self._changed.clear()
            await self._changed.wait()
        if self.closed or self.ended:
            raise BrokenChannelError("the flow ended before it took the item")
        self.rows.extend(rows)
        self._changed.set()

    async def send_stop(self) -> None:
        self.ended = True
        self._changed.set()

    def ready(self) -> bool:
        """Whether ``recv`` returns without waiting."""
        return bool(self.rows) or self.ended or self.closed

    async def recv(self) -> Any:
        while not self.ready():
            self._changed.clear()
            await self._changed.wait()
        if self.rows:
            value = self.rows.popleft()
            self._changed.set()  # room for a put()
            return (load([value], self.known)[0],)
        return None  # the end of the stream

    def close(self) -> None:
        self.closed = True
        self._changed.set()


class _ResultsLink(HostChannel):
    """A ``ResultsConsumer``'s items on Ray, both ends in the driver.

    The driver's copy of the node sends through it (``send``, its ``_host``), which
    waits while ``capacity`` items wait for a reader (backpressure: the batch stays in
    flight); ``flow.results()`` reads it through ``ResultsTap`` (``recv_nowait`` /
    ``wait``: what it expects of a receiver).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows: deque[Any] = deque()
        self.ended = False
        self._arrived = asyncio.Event()
        self._taken = asyncio.Event()

    async def send(self, row: tuple[Any, ...]) -> None:
        while len(self.rows) >= self.capacity and not self.ended:
            self._taken.clear()
            await self._taken.wait()
        if not self.ended:
            self.rows.append(row)
            self._arrived.set()

    def end(self) -> None:
        self.ended = True
        self._arrived.set()
        self._taken.set()

    def recv_nowait(self) -> Any:
        if self.rows:
            row = self.rows.popleft()
            self._taken.set()
            return row
        return STOP_FLOW if self.ended else EMPTY

    async def wait(self) -> None:
        if not self.rows and not self.ended:
            self._arrived.clear()
            await self._arrived.wait()


# -- the run -----------------------------------------------------------------------------
@dataclass(eq=False)
class _Task:
    name: str
    stage: int
    node: Node
    index: int = -1  # its place in the scheduler's tasks (names its shared slots)
    ask: dict[str, float] = field(default_factory=dict)  # what it reserves on Ray
    host: Any = None  # a host node: the driver's copy of it, which runs on the driver (no actor)
    link: Any = None  # a host node: its _FeedLink or _ResultsLink
    actor: Any = None
    actor_id: str | None = None
    node_id: str = ""  # the Ray node it runs on (known once it opened)
    ip: str = ""
    pid: int = 0
    placed: bool = False  # its open() came back (Ray found it a place)
    opened: bool = False
    closed: bool = False  # close() reported back
    dead: bool = False  # Ray said the actor died
    gone: bool = False  # we killed it
    killed: bool = False  # killed while still running (named by FlowKilledError)
    shares: bool = False  # it puts arrays in shared slots of its own (ray_slots)
    kill_sent: bool = False  # ray.kill() called
    stats: TaskStats = field(default_factory=TaskStats)
    queued: int = 0  # rows submitted to it and not yet processed
    dropped: int = 0  # REALTIME drops charged to this task


@dataclass(eq=False)
class _Batch:
    seq: int
    head: int = 0  # the producer stage the batch started at
    count: int = 0  # rows (known once the producers have reported)
    nbytes: int = 0
    ref: Any = None  # the rows after the last stage submitted so far
    refs: list[Any] = field(default_factory=list)  # produced: the rows, in parts (one, or one per worker)
    parts: tuple[int, ...] = ()  # produced: the rows in each part
    pending: int = 0  # reports still awaited for the stages submitted so far
    next_stage: int = 0
    order: int = 0  # dispatched parts, numbered in the chain's order (a ResultsConsumer delivers by it)
    group: SlotGroup = field(default_factory=SlotGroup)  # the shared slots it carries (its parts share it)
    produced: bool = False  # every producer has reported on it
    lost: bool = False  # a stage of it failed or died: submit nothing more


class RayScheduler(StopControl):
    """Runs a linearized flow as Ray actors (see the module docstring)."""

    def __init__(self, stages: tuple[Stage, ...], flow_type: FlowType, options: FlowOptions) -> None:
        super().__init__()
        self.stages = stages
        self.flow_type = flow_type
        self.options = options
        self.host_ready = asyncio.Event()
        self.host_closed = False  # the run is over: results() readers end
        self._links: dict[int, _FeedLink | _ResultsLink] = {}  # by stage: the host nodes' links
        self._results: dict[int, _ResultsLink] = {}  # by id(ResultsConsumer)
        self.tasks: list[_Task] = []
        self._by_stage: list[list[_Task]] = []
        self._finished = False
        self._uses_ray = False
        self._ledger = SlotLedger()  # shared slots lent to rows and views (ray_slots)
        self._actor_env: dict[str, Any] | None = None  # a runtime environment each actor gets (None: the job's)
        # the pump
        nprod = sum(1 for s in stages if isinstance(s.node, ProducerNode))
        self._nprod = nprod
        widest = max((s.width for s in stages), default=1)
        queue_size, batch_size = options.queue_size, options.batch_size
        if flow_type != REALTIME and (queue_size, batch_size) == _BATCH_DEFAULTS:
            # An actor call costs about a millisecond where the local engine's frame costs ~20 us:
            # left at BATCH's defaults, batches are 8x bigger on Ray (docs/ray.md, "Batches").
            queue_size, batch_size = _RAY_QUEUE_SIZE, _RAY_BATCH_SIZE
        self.queue_size, self.batch_size = queue_size, batch_size
        # In front of an nb_tasks stage of N workers, the last producer cuts each batch
        # into N parts of at most ``share`` rows that go to the workers in turn: a small
        # run (a fast producer fills its whole batch before any worker starts) is spread
        # over every worker, and a big one still moves ``share`` rows per actor call.
        share = max(1, min(queue_size, batch_size) // (2 * widest))
        self._limit = batch_size if widest == 1 else min(batch_size, share * widest)
        self._parts = min(widest, self._limit)
        self._budget = max(options.flush_interval, _MIN_BUDGET)
        self._batch_bytes = max(1, options.max_bytes_in_flight // 4)
        hops = max(1, len(stages) - nprod)
        # queue_size rows in flight per hop, but room for one part per worker of an
        # nb_tasks stage (REALTIME's window of one row would otherwise keep all but one
        # of its workers idle).
        part = -(-self._limit // self._parts)
        self._max_rows = sum(max(queue_size, s.width * part) for s in stages[nprod:]) or queue_size
        self._max_bytes = options.max_bytes_in_flight * hops
        self._realtime = flow_type == REALTIME
        self._head = 0
        self._seq = 0
        self._producing: deque[_Batch] = deque()  # in submission order
        self._ready: deque[_Batch] = deque()
        self._ready_rows = 0
        self._inflight = 0
        self._inflight_rows = 0
        self._inflight_bytes = 0
        self._turn = [0] * len(stages)
        # Host nodes, run by the driver: the feed's batches one at a time; the ResultsConsumers deliver
        # batches in dispatch order (unless an unordered stage comes before them).
        self._jobs: set[asyncio.Future[Any]] = set()
        self._feed_job: asyncio.Future[None] | None = None
        self._orders = 0
        self._next_turn = [0] * len(stages)
        self._lost_orders: set[int] = set()
        self._turn_changed = asyncio.Event()
        self._in_order = [
            not any(t.width > 1 and not t.node.ordered for t in stages[:s]) for s in range(len(stages))
        ]

    # -- the interface the Flow uses ---------------------------------------------
    def results_receiver(self, node: Node) -> _ResultsLink | None:
        """The driver's end of a ResultsConsumer's items (``None`` before the run started)."""
        return self._results.get(id(node))

    def _open_host(self) -> None:
        """The links of the host nodes, before anything else: ``put()`` may be called at once."""
        for s, stage in enumerate(self.stages):
            node = stage.node
            if isinstance(node, FeedProducer):
                feed = _FeedLink(self.options.queue_size)
                self._links[s] = feed
                node._attach(feed)
            elif isinstance(node, ResultsConsumer):
                results = _ResultsLink(self.options.queue_size)
                self._links[s] = results
                self._results[id(node)] = results
        self.host_ready.set()

    def _close_host(self) -> None:
        """The run is over: ``put()`` fails, readers of ``results()`` end."""
        self.host_closed = True
        for s, stage in enumerate(self.stages):
            link = self._links.get(s)
            if isinstance(stage.node, FeedProducer):
                stage.node._detach()
            if isinstance(link, _FeedLink):
                link.close()
            elif isinstance(link, _ResultsLink):
                link.end()
        self.host_ready.set()

    @property
    def started(self) -> bool:
        """Whether every task has opened its node (producers are then asked for rows)."""
        return bool(self.tasks) and all(task.opened for task in self.tasks)

    def stats(self) -> dict[str, TaskStats]:
        """Each task's latest stats (live while the flow runs: every call reports them)."""
        out: dict[str, TaskStats] = {}
        for task in self.tasks:
            stats = TaskStats(**{k: v for k, v in vars(task.stats).items()})
            stats.queued = task.queued
            stats.dropped = task.dropped
            out[task.name] = stats
        return out

    def kill(self, reason: str) -> None:
        """Kill every actor now."""
        self._stop_requested = True
        self._kill_reason = self._kill_reason or reason
        for task in self.tasks:
            if task.actor is not None and not task.gone:
                task.killed = not task.closed and not task.dead
                self._kill_actor(task)
            if isinstance(task.link, _ResultsLink):
                task.link.end()  # a delivery waiting for a reader gives up
        self._poke()

    def _kill_actor(self, task: _Task) -> None:
        """Kill ``task``'s actor; one with shared slots that did not close unlinks them first.

        (Ray kills the children of a worker that exits, ``multiprocessing``'s resource
        tracker among them, so the slots of a killed actor would stay in /dev/shm until
        the next sharing task on that machine sweeps them.)  It gets a second at most.
        """
        task.gone = True
        loop = self._loop
        if task.shares and not task.closed and not task.dead and loop is not None and not loop.is_closed():
            try:
                ref = task.actor.drop_slots.options(concurrency_group=_CONTROL).remote()
            except Exception:
                log.debug("could not ask %s to unlink its slots", task.name, exc_info=True)
            else:
                later = loop.call_later(_DROP_WAIT, self._send_kill, task)

                def dropped(_: Future[Any]) -> None:
                    later.cancel()
                    with contextlib.suppress(RuntimeError):  # the loop has closed: the kill went at exit
                        loop.call_soon_threadsafe(self._send_kill, task)

                ref.future().add_done_callback(dropped)
                return
        self._send_kill(task)

    def _send_kill(self, task: _Task) -> None:
        if task.kill_sent:
            return
        task.kill_sent = True
        try:
            ray.kill(task.actor, no_restart=True)
        except Exception:
            log.debug("could not kill the actor of %s", task.name, exc_info=True)

    async def _wait(self) -> None:
        assert self._changed is not None
        await self._changed.wait()
        self._changed.clear()

    def _set_error(self, error: FlowError) -> None:
        if self._error is not None:
            if error.task != self._error.task:
                log.error("%s (task %s) also failed: %s", error.node, error.task, str(error).splitlines()[0])
            return
        self._error = error
        self._stop_requested = True
        # Tasks stuck in a node must not hold the flow forever after a failure.
        timeout = self.options.stop_timeout
        self._arm_kill(timeout, f"they did not stop within {timeout}s after {error.task or error.node} failed")
        self._poke()

    # -- run ----------------------------------------------------------------------------
    async def run(self) -> dict[str, TaskStats]:
        """Run the flow to its end; return each task's stats or raise ``FlowError``."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        for s, stage in enumerate(self.stages):
            if isinstance(stage.node, FeedProducer) and s != 0:
                self._close_host()
                raise FlowError(
                    f"{stage.node.describe()}: on the Ray engine a FeedProducer must be the flow's first producer "
                    "(list it first in Flow([...])), as the driver feeds the chain from its start",
                    node=stage.node.name,
                )
        if self._stop_requested:
            self._close_host()
            return self.stats()  # stop() came before run(): start nothing
        self._open_host()
        cancelled = False
        work = asyncio.ensure_future(self._main())
        try:
            while not work.done():
                try:
                    await asyncio.shield(work)
                except asyncio.CancelledError:
                    if work.done():
                        break
                    if not cancelled:
                        cancelled = True
                        self.request_stop()
                        self._arm_kill(self.options.stop_timeout, "run() was cancelled")
                    else:
                        self.kill("run() was cancelled again")
        finally:
            if not work.done():  # KeyboardInterrupt or the like: end it all now
                self.kill("the driver was interrupted")
                work.cancel()
            cleanup = asyncio.ensure_future(self._cleanup())
            while not cleanup.done():
                try:
                    await asyncio.shield(cleanup)
                except asyncio.CancelledError:
                    cancelled = True
        self._close_host()
        if not work.cancelled():
            work.result()  # an unexpected error of the engine itself
        if cancelled:
            raise asyncio.CancelledError
        if self._error is not None:
            raise self._error
        if self._kill_reason is not None:
            killed = tuple(t.name for t in self.tasks if t.killed)
            raise FlowKilledError(
                f"tasks were ended hard ({self._kill_reason}): {', '.join(killed) or 'none still running'}",
                killed=killed,
            )
        return self.stats()

    async def _main(self) -> None:
        wanted = _runtime_env(self.options)
        started, given = await asyncio.to_thread(_acquire_ray, self.options.ray_address, wanted)
        self._uses_ray = True
        if started:  # a Ray a flow started: ours has the driver's import path, or needs its own
            self._actor_env = None if given == wanted else wanted
        else:  # the application's own Ray: its runtime environment, plus ray_runtime_env if given
            self._actor_env = self.options.ray_runtime_env
        if self._stopped_early():
            return
        self._create_actors()
        if await self._open_all() and not self._stopped_early():
            self._share()
            await self._pump()
        if self._kill_reason is None:
            await self._close_all()

    def _share(self) -> None:
        """Let each task whose later tasks all run on its Ray node put its big arrays in shared slots.

        (``ray_slots``: a copy into memory that is already mapped, where ``ray.put``
        costs several times more.)  A ``ResultsConsumer`` runs on the driver, so the
        driver's node counts for it; a driver on no node of the cluster (Ray Client)
        reads from the object store.
        """
        try:
            client = ray.util.client.ray.is_connected()  # type: ignore[no-untyped-call]
            here = "" if client else ray.get_runtime_context().get_node_id()
        except Exception:
            here = ""
        # What may be in flight, twice: slots are whole MiB, and views go some time after their rows.
        budget = 2 * self._max_bytes + (_PRODUCE_AHEAD + 2) * self._batch_bytes
        last = len(self.stages) - 1
        for task in self.tasks:
            if task.actor is None or not task.node_id or task.stage == last:
                continue
            later = [here if t.host is not None else t.node_id for t in self.tasks if t.stage > task.stage]
            if all(node_id == task.node_id for node_id in later):
                task.actor.share.remote(task.index, budget)
                task.shares = True

    def _stopped_early(self) -> bool:
        """A stop before anything was emitted: nothing to run, unless a feed holds items ``put()`` accepted."""
        accepted = any(isinstance(link, _FeedLink) and link.rows for link in self._links.values())
        return self._kill_reason is not None or (self._stop_requested and (self._error is not None or not accepted))

    def _create_actors(self) -> None:
        names = [
            (stage.node.name if stage.width == 1 else f"{stage.node.name}[{w}]", stage.node)
            for stage in self.stages
            if not _on_driver(stage.node)
            for w in range(stage.width)
        ]
        nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        totals: list[dict[str, float]] = [dict(n.get("Resources") or {}) for n in nodes]
        # Ray places GPU actors itself and sets their CUDA_VISIBLE_DEVICES: here we only
        # count the cluster's GPUs (capped by flow_options["gpus"]) to decide who gets one.
        gpus: list[str] = []
        if any(node.device_type == "gpu" for _, node in names):
            count = int(sum(t.get("GPU", 0) for t in totals))
            if self.options.gpus is not None:
                count = min(count, len(self.options.gpus))
            gpus = [str(i) for i in range(count)]
        devices = list(assign_devices(names, gpus))
        asks = _plan_resources([node for _, node in names], devices, totals)
        payloads = {id(stage): ray.cloudpickle.dumps(stage) for stage in self.stages}  # type: ignore[no-untyped-call]
        remote = _remote_class()
        last = len(self.stages) - 1
        k = 0
        for s, stage in enumerate(self.stages):
            row: list[_Task] = []
            if _on_driver(stage.node):
                copy = pickle.loads(pickle.dumps(stage.node))  # as a task process gets it
                copy._host = self._links[s]
                task = _Task(name=stage.node.name, stage=s, node=stage.node, host=copy, link=self._links[s])
                task.placed = True
                task.index = len(self.tasks)
                row.append(task)
                self.tasks.append(task)
                self._by_stage.append(row)
                continue
            for _ in range(stage.width):
                name, device, ask = names[k][0], devices[k], asks[k]
                k += 1
                task = _Task(name=name, stage=s, node=stage.node, ask=ask)
                # A GPU from Ray (num_gpus: Ray sets the device), none (CPU fallback:
                # hide every GPU), or a CPU node (leave the environment alone).
                extra: dict[str, Any] = {} if self._actor_env is None else {"runtime_env": self._actor_env}
                try:
                    task.actor = remote.options(
                        num_cpus=ask.get("CPU", 0),
                        num_gpus=ask.get("GPU", 0),
                        memory=ask.get("memory") or None,
                        resources={r: v for r, v in ask.items() if r not in _SPECIAL} or None,
                        max_restarts=0,
                        max_task_retries=0,
                        **extra,
                    ).remote(payloads[id(stage)], name, "" if device == "" else None, s < last, self.options.log_level)
                except Exception as exc:
                    raise FlowError(
                        f"{stage.node.describe()} (task {name}) could not be started on Ray: {exc}",
                        node=stage.node.name,
                        task=name,
                    ) from exc
                task.actor_id = task.actor._actor_id.hex()
                task.index = len(self.tasks)
                row.append(task)
                self.tasks.append(task)
            self._by_stage.append(row)

    def _watch(self, ref: Any, callback: Callable[[Future[Any]], None]) -> None:
        """Call ``callback(future)`` on the loop once ``ref`` is ready (or failed)."""
        loop = self._loop
        assert loop is not None

        def done(future: Future[Any]) -> None:
            try:
                loop.call_soon_threadsafe(callback, future)
            except RuntimeError:
                pass  # the loop has closed: the run is long over

        ref.future().add_done_callback(done)

    def _result(self, task: _Task, future: Future[Any]) -> Report | None:
        """The report of one call, or ``None`` if it failed (the failure is recorded)."""
        try:
            result = future.result()
        except RayActorError as exc:
            dead = getattr(exc, "actor_id", None)
            if isinstance(exc, RayTaskError) or (dead is not None and dead != task.actor_id):
                return None  # an input came from an actor that died: that one reports it
            self._died(task, exc)
            return None
        except Exception as exc:
            if not self._finished and self._kill_reason is None and self._error is None:
                gone = self._on_lost_node()
                if gone is not None and not gone.dead:  # rows lost with a node that left: its tasks are named
                    self._died(gone, exc)
                else:
                    self._set_error(
                        FlowError(
                            f"the Ray engine failed in task {task.name}: {exc}", node=task.node.name, task=task.name
                        )
                    )
            return None
        report: Report = result[1] if isinstance(result, tuple) else result
        if report.loaded or report.released:
            self._ledger.counted(report.loaded, report.released)
        if report.stats is not None:
            samples = report.stats.samples or task.stats.samples
            task.stats = report.stats
            task.stats.samples = samples
        if report.failure is not None:
            self._set_error(_failure_error(report.failure))
        return report

    def _died(self, task: _Task, exc: BaseException) -> None:
        if task.dead:
            return  # every call that was waiting for it says so
        task.dead = True
        if task.gone or self._kill_reason is not None:
            return  # we killed it
        when = "without finishing its work" if task.opened else "before its node opened"
        lost = self._node_lost(task, exc)
        if lost:
            for other in self.tasks:
                if other.node_id == task.node_id:
                    other.dead = True  # they are gone with it: no error of their own
            where = f"{task.node_id[:12]} ({task.ip})" if task.ip else task.node_id[:12]
            names = ", ".join(f"{t.name}" for t in lost)
            text = (
                f"{task.node.describe()} (task {task.name}) died on Ray {when}: the Ray node it ran on, "
                f"{where}, is gone, and every task on it with it: {names}\n{exc}"
            )
        else:
            text = f"{task.node.describe()} (task {task.name}) died on Ray {when}:\n{exc}"
        self._set_error(WorkerDiedError(text, node=task.node.name, task=task.name))

    def _on_lost_node(self) -> _Task | None:
        """A task of the flow whose Ray node has left the cluster, if any."""
        if not any(t.node_id for t in self.tasks):
            return None
        try:
            alive = {n.get("NodeID") for n in ray.nodes() if n.get("Alive")}  # type: ignore[no-untyped-call]
        except Exception:
            return None
        return next((t for t in self.tasks if t.node_id and t.node_id not in alive), None)

    def _node_lost(self, task: _Task, exc: BaseException) -> list[_Task]:
        """The tasks that were on ``task``'s Ray node if that node has left the cluster, else ``[]``."""
        if not task.node_id:
            return []
        gone = "node has died" in str(exc) or "node was terminated" in str(exc)
        if not gone:
            try:
                alive = {n.get("NodeID") for n in ray.nodes() if n.get("Alive")}  # type: ignore[no-untyped-call]
            except Exception:
                return []
            gone = task.node_id not in alive
        return [t for t in self.tasks if t.node_id == task.node_id] if gone else []

    async def _host_call(self, task: _Task, phase: str) -> bool:
        """Run a host node's ``open`` or ``close`` on the driver; ``False`` (the error set) if it raised."""
        try:
            value = getattr(task.host, phase)()
            if inspect.isawaitable(value):
                await value
        except Exception as exc:
            self._set_error(_failure_error(describe_failure(exc, task=task.name, node=task.node, phase=phase)))
            return False
        return True

    async def _open_all(self) -> bool:
        """Open every node; ``False`` if one could not (nothing is emitted then)."""
        waiting = 0
        for task in self.tasks:
            if task.host is not None:
                task.opened = await self._host_call(task, "open")
            else:
                waiting += 1

        def opened(task: _Task, future: Future[Any]) -> None:
            nonlocal waiting
            waiting -= 1
            task.placed = True
            report = self._result(task, future)
            if report is not None and report.where is not None:
                task.node_id, task.ip, task.pid = report.where
            if report is not None and report.load is not None:
                self._set_error(_load_error(task, report.load))
            task.opened = report is not None and report.failure is None and report.load is None
            self._poke()

        for task in self.tasks:
            if task.actor is not None:
                self._watch(task.actor.open.remote(), functools.partial(opened, task))
        loop = asyncio.get_running_loop()
        warn = loop.call_later(_PLACEMENT_WARNING, self._warn_unplaced)
        try:
            while waiting and self._kill_reason is None:
                await self._wait()
        finally:
            warn.cancel()
        return self._error is None and self._kill_reason is None

    def _warn_unplaced(self) -> None:
        """Tasks that Ray has not started after a while are waiting for resources that others hold."""
        waiting = [t for t in self.tasks if not t.placed]
        if not waiting:
            return
        try:
            free = {k: v for k, v in ray.available_resources().items() if not k.startswith("node:")}  # type: ignore[no-untyped-call]
        except Exception:
            free = {}
        asks = "; ".join(f"{t.name}: {_describe({k: v for k, v in t.ask.items() if v})}" for t in waiting[:8])
        free = {k: free.get(k, 0.0) for t in waiting for k, v in t.ask.items() if v}  # what they ask for
        log.warning(
            "Ray has not started %d task(s) of the flow after %.0f s: they wait for resources that other work on "
            "the cluster holds (%s; free now: %s)",
            len(waiting), _PLACEMENT_WARNING, asks, _describe(free),
        )

    async def _close_all(self) -> None:
        """Close every node that opened (``close()`` runs after the calls already submitted)."""
        waiting = 0

        def closed(task: _Task, future: Future[Any]) -> None:
            nonlocal waiting
            waiting -= 1
            self._result(task, future)
            task.closed = True
            self._poke()

        for task in self.tasks:
            if task.actor is not None and not task.dead and not task.gone:
                waiting += 1
                self._watch(task.actor.close.remote(), functools.partial(closed, task))
        for task in self.tasks:
            if task.host is not None and task.opened:
                task.opened = False
                await self._host_call(task, "close")
                task.closed = True
            if isinstance(task.link, _ResultsLink):
                task.link.end()  # every row has been delivered: the readers' stream ends
        while waiting and self._kill_reason is None:
            await self._wait()

    async def _cleanup(self) -> None:
        """Kill the actors, wait until Ray has them gone, let go of Ray."""
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        for job in list(self._jobs):
            job.cancel()
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        for task in self.tasks:
            if task.actor is not None and not task.gone:
                self._kill_actor(task)
        deadline = time.monotonic() + _DEATH_WAIT
        alive = [t for t in self.tasks if t.actor is not None and not t.dead]
        while alive and time.monotonic() < deadline:
            refs = [t.actor.ping.remote() for t in alive]
            still: list[_Task] = []
            for task, ref in zip(alive, refs, strict=True):
                try:
                    await asyncio.wait_for(asyncio.wrap_future(ref.future()), max(0.1, deadline - time.monotonic()))
                    still.append(task)
                except RayActorError:
                    task.dead = True
                except Exception:
                    pass
            alive = still
            if alive:
                await asyncio.sleep(0.05)
        self._finished = True
        if alive:
            log.warning("Ray did not confirm the end of %s", ", ".join(t.name for t in alive))
        if self._uses_ray:
            self._uses_ray = False
            await asyncio.to_thread(_release_ray)

    # -- the pump ----------------------------------------------------------------------
    async def _pump(self) -> None:
        """Submit batches until every producer has ended (or the flow stops), then drain."""
        nprod = self._nprod
        interrupted = False
        while self._kill_reason is None:
            stopping = self._stop_requested or self._error is not None
            if stopping and not interrupted:
                interrupted = True
                self._interrupt_producers()
            # A feed at the head still emits what put() accepted before the stop (not after an error).
            feeding = self._head < nprod and isinstance(self._links.get(self._head), _FeedLink) and self._error is None
            if not stopping or feeding:
                while self._head < nprod and len(self._producing) < _PRODUCE_AHEAD and (
                    self._realtime or len(self._producing) + len(self._ready) < _PRODUCE_AHEAD
                ):
                    self._produce()
            while self._ready and (self._inflight == 0 or self._has_room(self._ready[0])):
                batch = self._ready.popleft()
                self._ready_rows -= batch.count
                self._dispatch(batch)
            over = (stopping and not feeding) or self._head >= nprod
            if not self._producing and not self._ready and not self._inflight and over:
                return
            await self._wait()

    def _interrupt_producers(self) -> None:
        """The flow stops: a producer waiting in an async ``next()`` is interrupted, its stream ends there
        (the actor's ``interrupt`` runs in a concurrency group of its own, beside a ``produce`` call);
        a ``FeedProducer`` refuses new items and ends behind those ``put()`` accepted."""
        for s in range(self._nprod):
            node = self.stages[s].node
            if isinstance(node, FeedProducer):
                node._stop_feed()
                continue
            for task in self._by_stage[s]:
                if task.actor is not None and not (task.dead or task.gone):
                    try:
                        task.actor.interrupt.options(concurrency_group=_CONTROL).remote()
                    except Exception:
                        log.debug("could not interrupt %s", task.name, exc_info=True)

    def _has_room(self, batch: _Batch) -> bool:
        return (
            self._inflight_rows + batch.count <= self._max_rows
            and self._inflight_bytes + batch.nbytes <= self._max_bytes
        )

    def _produce(self) -> None:
        batch = _Batch(seq=self._seq, head=self._head)
        self._seq += 1
        self._producing.append(batch)
        if isinstance(self._links.get(self._head), _FeedLink):  # the driver reads the feed itself
            batch.pending += 1
            job = asyncio.ensure_future(self._feed(batch, self._feed_job))
            self._feed_job = job
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)
            return
        self._produce_from(batch, self._head, None)

    def _produce_from(self, batch: _Batch, first: int, ref: Any) -> None:
        """Ask the producer actors from stage ``first`` on for the batch (``ref``: rows to zip onto)."""
        last = self._nprod - 1
        for s in range(first, self._nprod):
            task = self._by_stage[s][0]
            if s == last and self._parts > 1:  # cut into one part per worker of the nb_tasks stage
                outs = task.actor.produce.options(num_returns=self._parts + 1).remote(
                    ref, self._limit, self._budget, self._batch_bytes, self._parts, self._ledger.due(task.index)
                )
                batch.refs, report = list(outs[:-1]), outs[-1]
            else:
                ref, report = task.actor.produce.options(num_returns=2).remote(
                    ref, self._limit, self._budget, self._batch_bytes, 1, self._ledger.due(task.index)
                )
                batch.refs = [ref]
            batch.pending += 1
            self._watch(report, functools.partial(self._on_produced, batch, task))

    async def _feed(self, batch: _Batch, before: asyncio.Future[None] | None) -> None:
        """A batch from the feed at the head (one at a time, in order), then the producers after it."""
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        task = self._by_stage[0][0]
        report = await self._feed_rows(task, batch)
        if self._finished:
            return
        self._produced(batch, task, report)

    async def _feed_rows(self, task: _Task, batch: _Batch) -> Report:
        """Up to ``batch_size`` rows from the driver's copy of the FeedProducer: what is there now, at least one."""
        stage = self.stages[task.stage]
        link, node, stats = task.link, task.host, task.stats
        own: list[Any] = []
        report = Report()
        while len(own) < self._limit and not self._finished:
            if own and not link.ready():
                break  # hand over what came; the next batch waits for more
            try:
                value = node.next()
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                if not _is_end(exc):
                    report.failure = describe_failure(exc, task=task.name, node=task.node, phase="next")
                report.ended = True
                break
            report.nbytes += _size(value)
            own.append(fix(value, link.known))  # an array put() fixed goes on as it is
        rows = assemble(stage.out_sources, len(own), own, _flags_of(own), None)
        link.known.clear()
        report.rows = rows.n
        stats.processed += rows.n
        stats.sent += rows.n
        if self._nprod > 1:  # the producers after the feed zip their items onto its rows
            self._produce_from(batch, 1, ray.put(rows))
        elif self._parts > 1:
            parts = rows.split(self._parts)
            batch.refs = [ray.put(part) for part in parts]
            report.parts = tuple(part.n for part in parts)
        else:
            batch.refs = [ray.put(rows)]
        return report

    def _on_produced(self, batch: _Batch, task: _Task, future: Future[Any]) -> None:
        if self._finished:
            return
        self._produced(batch, task, self._result(task, future))

    def _produced(self, batch: _Batch, task: _Task, report: Report | None) -> None:
        batch.pending -= 1
        if report is not None and report.failure is not None and task.host is not None:
            self._set_error(_failure_error(report.failure))  # an actor's failures come through _result
        if report is None:
            batch.lost = True
        else:
            if report.made:
                self._ledger.made(batch.group, task.index, report.made)
            batch.nbytes += report.nbytes
            if task.stage == self._nprod - 1:
                batch.count = report.rows
                batch.parts = report.parts or (report.rows,)
            if task.stage == batch.head and report.ended and self._head == task.stage:
                self._head += 1  # this producer is done: batches start at the next one
        batch.produced = batch.pending == 0
        # Batches become ready in the order they were asked for, whatever order the reports came in.
        while self._producing and self._producing[0].produced:
            ready = self._producing.popleft()
            if ready.lost or ready.count == 0:
                self._ledger.finished(ready.group, dropped=True)
                continue
            self._ready.append(ready)
            self._ready_rows += ready.count
            if self._realtime:
                last = self._by_stage[self._nprod - 1][0]
                while len(self._ready) > 1 and self._ready_rows > self.options.queue_size:
                    old = self._ready.popleft()
                    self._ready_rows -= old.count
                    last.dropped += old.count
                    self._ledger.finished(old.group, dropped=True)
        self._poke()

    def _dispatch(self, batch: _Batch) -> None:
        """Submit a produced batch down the chain, each non-empty part as a batch of its own."""
        refs, batch.refs = batch.refs, []
        batch.group.left = sum(1 for count in batch.parts if count)
        done = 0  # rows of the parts before this one (their bytes: pro rata, adding up to the batch's)
        for ref, count in zip(refs, batch.parts, strict=True):
            if count == 0:
                continue
            nbytes = (batch.nbytes * (done + count)) // batch.count - (batch.nbytes * done) // batch.count
            done += count
            part = _Batch(
                seq=batch.seq, head=batch.head, count=count, nbytes=nbytes, ref=ref, produced=True, group=batch.group
            )
            part.order = self._orders
            self._orders += 1
            self._inflight += 1
            self._inflight_rows += count
            self._inflight_bytes += nbytes
            self._submit(part, self._nprod)

    def _submit(self, batch: _Batch, start: int) -> None:
        """Submit ``batch`` to the stages from ``start`` on, up to the end, an unordered stage or a host node."""
        ref = batch.ref
        s = start
        last = len(self.stages) - 1
        while True:
            stage = self.stages[s]
            tasks = self._by_stage[s]
            task = tasks[self._turn[s] % len(tasks)]
            if task.host is not None:  # a ResultsConsumer: once the stages before it have reported
                if s == start:
                    self._turn[s] += 1
                    job = asyncio.ensure_future(self._deliver(batch, task))
                    self._jobs.add(job)
                    job.add_done_callback(self._jobs.discard)
                    return
                break
            self._turn[s] += 1
            task.queued += batch.count
            free = self._ledger.due(task.index)
            if s < last:
                ref, report = task.actor.process.options(num_returns=2).remote(ref, free)
            else:
                ref, report = None, task.actor.process.remote(ref, free)
            batch.pending += 1
            self._watch(report, functools.partial(self._on_processed, batch, task))
            s += 1
            if s > last or (stage.width > 1 and not stage.node.ordered):
                break
        batch.ref = ref
        batch.next_stage = s

    async def _deliver(self, batch: _Batch, task: _Task) -> None:
        """A ResultsConsumer's part of ``batch``, on the driver: its items to the host, in the chain's order."""
        s = task.stage
        stage = self.stages[s]
        rows: Rows | None
        try:
            rows = await asyncio.wrap_future(batch.ref.future())
        except Exception:
            rows = None  # the stage that made them says why
        if self._in_order[s]:  # the batches before this one first
            while not self._finished and self._next_turn[s] != batch.order:
                changed = self._turn_changed
                await changed.wait()
        if rows is None or self._finished:
            batch.lost = True
        else:
            node, stats = task.host, task.stats
            skip = node.on_error == "skip"
            fixed = [v for j in stage.parent_slots if rows.flags[j] & FIXED for v in rows.cols[j] if type(v) is Pickled]
            arrays = [ref for v in fixed for ref in v.refs if type(ref) is not SlotRef]
            if arrays:  # fetched without blocking the loop (from another machine, maybe); then read in place
                await asyncio.gather(*(asyncio.wrap_future(ref.future()) for ref in arrays))
            loader = self._ledger.loader
            columns = [
                load(rows.cols[j], None, loader) if rows.flags[j] & FIXED else rows.cols[j] for j in stage.parent_slots
            ]
            task.queued += rows.n
            for k in range(rows.n):
                task.queued -= 1
                stats.received += 1
                inputs = tuple(c[k] for c in columns)
                if any(v is ABSENT for v in inputs):
                    continue
                try:
                    value = node.consume(*inputs)
                    if inspect.isawaitable(value):
                        await value
                    stats.processed += 1
                except Exception as exc:
                    if skip:
                        stats.skipped += 1
                        continue
                    self._set_error(
                        _failure_error(describe_failure(exc, task=task.name, node=task.node, phase="consume"))
                    )
                    batch.lost = True
                    break
            task.queued = 0
        self._next_turn[s] = max(self._next_turn[s], batch.order + 1)
        self._skip_lost(s)
        if self._finished:
            return
        if not batch.lost and s < len(self.stages) - 1:
            assert rows is not None
            batch.ref = ray.put(assemble(stage.out_sources, rows.n, None, 0, rows))
            self._submit(batch, s + 1)
        else:
            self._finish(batch)
        self._poke()

    def _skip_lost(self, s: int) -> None:
        """Advance stage ``s``'s turn past batches that were lost before reaching it; wake who waits."""
        while self._next_turn[s] in self._lost_orders:
            self._next_turn[s] += 1
        changed, self._turn_changed = self._turn_changed, asyncio.Event()
        changed.set()

    def _finish(self, batch: _Batch) -> None:
        batch.ref = None
        self._ledger.finished(batch.group)
        self._inflight -= 1
        self._inflight_rows -= batch.count
        self._inflight_bytes -= batch.nbytes
        if batch.lost:  # a ResultsConsumer it never reached must not wait for it
            self._lost_orders.add(batch.order)
            for s, link in self._links.items():
                if isinstance(link, _ResultsLink):
                    self._skip_lost(s)

    def _on_processed(self, batch: _Batch, task: _Task, future: Future[Any]) -> None:
        if self._finished:
            return
        task.queued -= batch.count
        report = self._result(task, future)
        if report is None:
            batch.lost = True
        elif report.made:
            self._ledger.made(batch.group, task.index, report.made)
        batch.pending -= 1
        if batch.pending == 0:
            if batch.next_stage < len(self.stages) and not batch.lost:
                self._submit(batch, batch.next_stage)  # after an unordered stage or before a host node
            else:
                self._finish(batch)
        self._poke()


def _failure_error(failure: TaskFailure) -> NodeFailedError:
    error = NodeFailedError(
        f"{failure.node_type} {failure.node!r} (task {failure.task}) failed in {failure.phase}(): "
        f"{failure.summary}\n\nRemote traceback:\n{failure.traceback}",
        node=failure.node,
        task=failure.task,
    )
    cause: BaseException | None = None
    if failure.exception is not None:
        try:
            cause = pickle.loads(failure.exception)
        except Exception:
            cause = None
    error.__cause__ = cause if cause is not None else RemoteTraceback(failure.traceback)
    return error


def _describe(amounts: dict[str, float]) -> str:
    """``{"CPU": 0.25, "my_accel": 1}`` as ``CPU 0.25, my_accel 1`` (memory in MiB)."""
    if not amounts:
        return "nothing"
    parts = []
    for key, value in sorted(amounts.items()):
        if key in ("memory", "object_store_memory"):
            parts.append(f"{key} {value / 2**20:.0f} MiB")
        else:
            parts.append(f"{key} {value:g}")
    return ", ".join(parts)


def cpu_share(node_cpus: list[float], tasks: int, reserved: Sequence[float] = ()) -> float:
    """The CPU each of ``tasks`` default tasks reserves: 1, or the largest ``1/k`` (to 1e-4) that places them all.

    ``node_cpus``: each node's CPUs; ``reserved``: the CPU that tasks with an explicit
    amount take, counted against the same room.  ``0.0`` when even 1e-4 CPU a task
    cannot place them (the caller says what is missing).
    """
    if tasks <= 0:
        return 0.0
    for k in range(1, 10_001):
        share = math.floor(10_000 / k) / 10_000  # Ray counts resources in units of 1e-4: round down
        room = sum(math.floor(c / share + 1e-9) for c in node_cpus)
        taken = sum(math.ceil(r / share - 1e-9) for r in reserved)
        if room - taken >= tasks:
            return share
    return 0.0


def _plan_resources(
    nodes: list[Node], devices: list[str | None], totals: list[dict[str, float]]
) -> list[dict[str, float]]:
    """What each task reserves on Ray, checked against the cluster (``FlowError`` naming what is missing).

    A task reserves what its node's ``resources`` says; ``CPU`` left out: a share of a
    CPU (``cpu_share``: one CPU each when the cluster has that many, else an equal
    share that places the whole flow); ``GPU`` left out: one for a task that got a GPU.
    """
    asks: list[dict[str, float]] = []
    for node, device in zip(nodes, devices, strict=True):
        ask = {k: float(v) for k, v in (node.resources or {}).items()}
        if "GPU" not in ask:
            ask["GPU"] = 1.0 if device else 0.0
        elif device == "":
            ask["GPU"] = 0.0  # no GPU left for it: it runs on the CPU (cpu_fallback)
        asks.append(ask)
    problems: list[str] = []
    for node, ask in zip(nodes, asks, strict=True):  # each task on one node: is there one that can hold it?
        wanted = {k: v for k, v in ask.items() if v > 0}
        if not any(all(t.get(k, 0.0) >= v for k, v in wanted.items()) for t in totals):
            best = {k: max((t.get(k, 0.0) for t in totals), default=0.0) for k in wanted}
            short = ", ".join(
                f"{k}: {v:g} asked, {'none in the cluster' if best[k] == 0 else f'{best[k]:g} at most on one node'}"
                for k, v in wanted.items()
                if best[k] < v
            ) or "no single node has all of them"
            problem = f"{node.describe()} asks for {_describe(wanted)} per task ({short})"
            if problem not in problems:
                problems.append(problem)
    if not problems:  # the whole flow at once
        node_cpus = [t.get("CPU", 0.0) for t in totals]
        default = [a for a in asks if "CPU" not in a]
        explicit = [a["CPU"] for a in asks if "CPU" in a]
        share = cpu_share(node_cpus, len(default), explicit)
        for ask in default:
            ask["CPU"] = share
        if default and share == 0.0:
            taken = f" ({sum(explicit):g} of them asked for by the nodes' own resources)" if sum(explicit) else ""
            problems.append(
                f"{len(default)} task(s) need a share of a CPU, and the cluster has {sum(node_cpus):g} CPU{taken}"
            )
        needed: dict[str, float] = {}
        for ask in asks:
            for k, v in ask.items():
                needed[k] = needed.get(k, 0.0) + v
        for k, v in needed.items():
            have = sum(t.get(k, 0.0) for t in totals)
            if v > have + 1e-9 and not (k == "CPU" and default and share == 0.0):
                problems.append(f"the flow's tasks ask for {v:g} {k} in all, and the cluster has {have:g}")
    if problems:
        shown = [_describe({k: v for k, v in t.items() if not k.startswith("node:")}) for t in totals]
        raise FlowError(
            f"the flow can never be placed on this Ray cluster (nodes: {'; '.join(shown) or 'none'}):\n- "
            + "\n- ".join(problems)
        )
    return asks


def _load_error(task: _Task, failure: LoadFailure) -> NodeFailedError:
    """A node whose class the Ray worker could not import: which module, and how to get it there."""
    module = f"module {failure.module!r}" if failure.module else "the module that defines it"
    error = NodeFailedError(
        f"{task.node.describe()} (task {task.name}) could not be loaded on its Ray worker"
        f"{f' (node {task.ip})' if task.ip else ''}: {failure.summary}.\n"
        f"The worker unpickles the node and needs {module}: install it on every Ray node, or ship it with "
        "flow_options['ray_runtime_env'] (e.g. {'py_modules': [path_to_package]} or {'working_dir': '.'}); "
        "a Ray that the flow starts itself gets the driver's sys.path folders.\n\n"
        f"Remote traceback:\n{failure.traceback}",
        node=task.node.name,
        task=task.name,
    )
    error.__cause__ = RemoteTraceback(failure.traceback)
    return error


def _on_driver(node: Node) -> bool:
    """Whether the driver runs ``node`` itself (host nodes: their other end is the application)."""
    return isinstance(node, (FeedProducer, ResultsConsumer))
