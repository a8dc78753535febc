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

Stopping follows docs/design.md#stop-protocol: producers are not asked for more, the batches in
flight finish, every actor closes its node, then the actors are killed and a Ray
the flow started itself is shut down.  Errors: a node's exception (reported, with
the rows before it passed on) → ``NodeFailedError``; a dead actor →
``WorkerDiedError``; ``stop(timeout)`` expiry or a second cancel → actors killed →
``FlowKilledError``.  After an error the other tasks get ``stop_timeout`` seconds
to finish before they are killed.

Ray itself: with ``ray_address`` the flow connects to that cluster; without it,
``ray.init()`` finds ``RAY_ADDRESS`` or starts a local Ray.  Either way the
connection is made in a thread of its own that lives until the last flow using it
ends and then calls ``ray.shutdown()``: Ray's daemons die with the thread that
spawned them (``PR_SET_PDEATHSIG``), and ``ray.init`` called off the main thread
leaves the application's SIGTERM handler alone.  A Ray that was already
initialized when the flow started is used and left running.

Not yet on Ray: ``FeedProducer`` / ``ResultsConsumer`` (host nodes), the
``max_bytes_in_flight`` budget is an estimate from the producers' items, arrays
travel pickled inside rows (no shared-memory slots).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..core.constants import REALTIME, FlowType
from ..core.errors import FlowError, FlowKilledError, NodeFailedError, WorkerDiedError
from ..core.graph import Stage
from ..core.host import FeedProducer, ResultsConsumer
from ..core.node import Node, ProducerNode
from ..core.options import FlowOptions
from .devices import assign_devices
from .ray_actor import Report, TaskRunnerActor
from .scheduler import RemoteTraceback
from .spec import TaskFailure, TaskStats
from .stopping import StopControl

try:
    import ray
    from ray.exceptions import RayActorError, RayTaskError
except ImportError as exc:  # pragma: no cover - scheduler_for() turns this into a clear message
    raise ImportError("the Ray engine needs Ray: pip install 'asyncflow[ray]'") from exc

__all__ = ["RayScheduler"]

log = logging.getLogger("asyncflow.ray")

_PRODUCE_AHEAD = 2  # producer calls outstanding at once
_MIN_BUDGET = 0.005  # seconds a producer call may spend filling a batch, at least
_DEATH_WAIT = 3.0  # seconds to wait for Ray to confirm that killed actors are gone


# -- the Ray connection, shared by the flows of this process --------------------------
class _Keeper(threading.Thread):
    """Calls ``ray.init``, then lives until told to call ``ray.shutdown`` (see the module docstring)."""

    def __init__(self, address: str | None) -> None:
        super().__init__(name="asyncflow-ray", daemon=True)
        self.address = address
        self.ready = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        quiet = _NoSigtermWarning()
        logging.getLogger("ray").addFilter(quiet)
        logging.getLogger("ray._private.worker").addFilter(quiet)
        try:
            if self.address is None:
                ray.init(include_dashboard=False, configure_logging=False)
            else:
                ray.init(address=self.address)
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


class _NoSigtermWarning(logging.Filter):
    """Ray warns that it sets no SIGTERM handler off the main thread: that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("SIGTERM handler is not set")


_ray_lock = threading.Lock()
_ray_users = 0
_ray_keeper: _Keeper | None = None


def _acquire_ray(address: str | None) -> None:
    """Use the Ray this process is connected to, or connect (blocking: run it in a thread)."""
    global _ray_users, _ray_keeper
    with _ray_lock:
        if not ray.is_initialized():
            keeper = _Keeper(address)
            keeper.start()
            keeper.ready.wait()
            if keeper.error is not None:
                keeper.join()
                target = f"the Ray cluster at {address!r}" if address else "Ray"
                raise FlowError(f"the Ray engine could not start or reach {target}: {keeper.error}") from keeper.error
            _ray_keeper = keeper
        _ray_users += 1


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


@functools.cache
def _remote_class() -> Any:
    return ray.remote(TaskRunnerActor)


# -- the run -----------------------------------------------------------------------------
@dataclass(eq=False)
class _Task:
    name: str
    stage: int
    node: Node
    actor: Any = None
    actor_id: str | None = None
    opened: bool = False
    closed: bool = False  # close() reported back
    dead: bool = False  # Ray said the actor died
    gone: bool = False  # we killed it
    killed: bool = False  # killed while still running (named by FlowKilledError)
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
        self.tasks: list[_Task] = []
        self._by_stage: list[list[_Task]] = []
        self._finished = False
        self._uses_ray = False
        # the pump
        nprod = sum(1 for s in stages if isinstance(s.node, ProducerNode))
        self._nprod = nprod
        widest = max((s.width for s in stages), default=1)
        # In front of an nb_tasks stage of N workers, the last producer cuts each batch
        # into N parts of at most ``share`` rows that go to the workers in turn: a small
        # run (a fast producer fills its whole batch before any worker starts) is spread
        # over every worker, and a big one still moves ``share`` rows per actor call.
        share = max(1, min(options.queue_size, options.batch_size) // (2 * widest))
        self._limit = options.batch_size if widest == 1 else min(options.batch_size, share * widest)
        self._parts = min(widest, self._limit)
        self._budget = max(options.flush_interval, _MIN_BUDGET)
        self._batch_bytes = max(1, options.max_bytes_in_flight // 4)
        hops = max(1, len(stages) - nprod)
        # queue_size rows in flight per hop, but room for one part per worker of an
        # nb_tasks stage (REALTIME's window of one row would otherwise keep all but one
        # of its workers idle).
        part = -(-self._limit // self._parts)
        self._max_rows = sum(max(options.queue_size, s.width * part) for s in stages[nprod:]) or options.queue_size
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

    # -- the interface the Flow uses ---------------------------------------------
    def results_receiver(self, node: Node) -> None:
        """Host nodes do not run on Ray yet (``run()`` refuses them)."""
        return None

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
        self._poke()

    def _kill_actor(self, task: _Task) -> None:
        task.gone = True
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
        self.host_ready.set()  # no host channels on Ray: results() ends at once
        for stage in self.stages:
            if isinstance(stage.node, (FeedProducer, ResultsConsumer)):
                raise FlowError(
                    f"{stage.node.describe()}: host nodes (FeedProducer, ResultsConsumer) do not run on the "
                    "Ray engine yet; use the local engine",
                    node=stage.node.name,
                )
        if self._stop_requested:
            return self.stats()  # stop() came before run(): start nothing
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
        await asyncio.to_thread(_acquire_ray, self.options.ray_address)
        self._uses_ray = True
        if self._stop_requested:
            return
        self._create_actors()
        if await self._open_all() and not self._stop_requested:
            await self._pump()
        if self._kill_reason is None:
            await self._close_all()

    def _create_actors(self) -> None:
        names = [
            (stage.node.name if stage.width == 1 else f"{stage.node.name}[{w}]", stage.node)
            for stage in self.stages
            for w in range(stage.width)
        ]
        # Ray places GPU actors itself and sets their CUDA_VISIBLE_DEVICES: here we only
        # count the cluster's GPUs (capped by flow_options["gpus"]) to decide who gets one.
        gpus: list[str] = []
        if any(node.device_type == "gpu" for _, node in names):
            resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
            count = int(resources.get("GPU", 0))
            if self.options.gpus is not None:
                count = min(count, len(self.options.gpus))
            gpus = [str(i) for i in range(count)]
        devices = iter(assign_devices(names, gpus))
        remote = _remote_class()
        last = len(self.stages) - 1
        for s, stage in enumerate(self.stages):
            row: list[_Task] = []
            for w in range(stage.width):
                name = stage.node.name if stage.width == 1 else f"{stage.node.name}[{w}]"
                device = next(devices)
                task = _Task(name=name, stage=s, node=stage.node)
                # A GPU from Ray (num_gpus=1: Ray sets the device), none (CPU fallback:
                # hide every GPU), or a CPU node (leave the environment alone).
                try:
                    task.actor = remote.options(
                        num_cpus=0, num_gpus=1 if device else 0, max_restarts=0, max_task_retries=0
                    ).remote(stage, name, "" if device == "" else None, s < last, self.options.log_level)
                except Exception as exc:
                    raise FlowError(
                        f"{stage.node.describe()} (task {name}) could not be started on Ray: {exc}",
                        node=stage.node.name,
                        task=name,
                    ) from exc
                task.actor_id = task.actor._actor_id.hex()
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
                self._set_error(
                    FlowError(f"the Ray engine failed in task {task.name}: {exc}", node=task.node.name, task=task.name)
                )
            return None
        report: Report = result[1] if isinstance(result, tuple) else result
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
        self._set_error(
            WorkerDiedError(
                f"{task.node.describe()} (task {task.name}) died on Ray {when}:\n{exc}",
                node=task.node.name,
                task=task.name,
            )
        )

    async def _open_all(self) -> bool:
        """Open every node; ``False`` if one could not (nothing is emitted then)."""
        waiting = len(self.tasks)

        def opened(task: _Task, future: Future[Any]) -> None:
            nonlocal waiting
            waiting -= 1
            report = self._result(task, future)
            task.opened = report is not None and report.failure is None
            self._poke()

        for task in self.tasks:
            self._watch(task.actor.open.remote(), functools.partial(opened, task))
        while waiting and self._kill_reason is None:
            await self._wait()
        return self._error is None and self._kill_reason is None

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
            if not task.dead and not task.gone:
                waiting += 1
                self._watch(task.actor.close.remote(), functools.partial(closed, task))
        while waiting and self._kill_reason is None:
            await self._wait()

    async def _cleanup(self) -> None:
        """Kill the actors, wait until Ray has them gone, let go of Ray."""
        if self._kill_timer is not None:
            self._kill_timer.cancel()
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
        while self._kill_reason is None:
            stopping = self._stop_requested or self._error is not None
            if not stopping:
                while self._head < nprod and len(self._producing) < _PRODUCE_AHEAD and (
                    self._realtime or len(self._producing) + len(self._ready) < _PRODUCE_AHEAD
                ):
                    self._produce()
            while self._ready and (self._inflight == 0 or self._has_room(self._ready[0])):
                batch = self._ready.popleft()
                self._ready_rows -= batch.count
                self._dispatch(batch)
            if not self._producing and not self._ready and not self._inflight and (stopping or self._head >= nprod):
                return
            await self._wait()

    def _has_room(self, batch: _Batch) -> bool:
        return (
            self._inflight_rows + batch.count <= self._max_rows
            and self._inflight_bytes + batch.nbytes <= self._max_bytes
        )

    def _produce(self) -> None:
        batch = _Batch(seq=self._seq, head=self._head)
        self._seq += 1
        self._producing.append(batch)
        ref: Any = None
        last = self._nprod - 1
        for s in range(self._head, self._nprod):
            task = self._by_stage[s][0]
            if s == last and self._parts > 1:  # cut into one part per worker of the nb_tasks stage
                outs = task.actor.produce.options(num_returns=self._parts + 1).remote(
                    ref, self._limit, self._budget, self._batch_bytes, self._parts
                )
                batch.refs, report = list(outs[:-1]), outs[-1]
            else:
                ref, report = task.actor.produce.options(num_returns=2).remote(
                    ref, self._limit, self._budget, self._batch_bytes
                )
                batch.refs = [ref]
            batch.pending += 1
            self._watch(report, functools.partial(self._on_produced, batch, task))

    def _on_produced(self, batch: _Batch, task: _Task, future: Future[Any]) -> None:
        if self._finished:
            return
        report = self._result(task, future)
        batch.pending -= 1
        if report is None:
            batch.lost = True
        else:
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
                continue
            self._ready.append(ready)
            self._ready_rows += ready.count
            if self._realtime:
                last = self._by_stage[self._nprod - 1][0]
                while len(self._ready) > 1 and self._ready_rows > self.options.queue_size:
                    old = self._ready.popleft()
                    self._ready_rows -= old.count
                    last.dropped += old.count
        self._poke()

    def _dispatch(self, batch: _Batch) -> None:
        """Submit a produced batch down the chain, each non-empty part as a batch of its own."""
        refs, batch.refs = batch.refs, []
        done = 0  # rows of the parts before this one (their bytes: pro rata, adding up to the batch's)
        for ref, count in zip(refs, batch.parts, strict=True):
            if count == 0:
                continue
            nbytes = (batch.nbytes * (done + count)) // batch.count - (batch.nbytes * done) // batch.count
            done += count
            part = _Batch(seq=batch.seq, head=batch.head, count=count, nbytes=nbytes, ref=ref, produced=True)
            self._inflight += 1
            self._inflight_rows += count
            self._inflight_bytes += nbytes
            self._submit(part, self._nprod)

    def _submit(self, batch: _Batch, start: int) -> None:
        """Submit ``batch`` to the stages from ``start`` on, up to the end or an unordered stage."""
        ref = batch.ref
        s = start
        last = len(self.stages) - 1
        while True:
            stage = self.stages[s]
            tasks = self._by_stage[s]
            task = tasks[self._turn[s] % len(tasks)]
            self._turn[s] += 1
            task.queued += batch.count
            if s < last:
                ref, report = task.actor.process.options(num_returns=2).remote(ref)
            else:
                ref, report = None, task.actor.process.remote(ref)
            batch.pending += 1
            self._watch(report, functools.partial(self._on_processed, batch, task))
            s += 1
            if s > last or (stage.width > 1 and not stage.node.ordered):
                break
        batch.ref = ref
        batch.next_stage = s

    def _on_processed(self, batch: _Batch, task: _Task, future: Future[Any]) -> None:
        if self._finished:
            return
        task.queued -= batch.count
        report = self._result(task, future)
        if report is None:
            batch.lost = True
        batch.pending -= 1
        if batch.pending == 0:
            if batch.next_stage < len(self.stages) and not batch.lost:
                self._submit(batch, batch.next_stage)  # after an unordered stage: as it completes
            else:
                batch.ref = None
                self._inflight -= 1
                self._inflight_rows -= batch.count
                self._inflight_bytes -= batch.nbytes
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
