"""The Ray engine: the same linearized flow, one Ray actor per task.

The driver (this scheduler, on the caller's event loop) pulls a batch of rows
from the producers and submits it through the chain as actor calls, passing each
call's ``ObjectRef`` straight to the next stage's actor, so that rows move from
actor to actor through Ray's object store, not through the driver.  A stage with
``nb_tasks=N`` has N actors that take batches in turn; the driver awaits the
batches' ends in order, which keeps the output order.  At most
``queue_size // batch_size`` batches (at least 2) are in flight: that is the
backpressure.  In REALTIME a produced batch that finds the window full waits as
the one pending batch; a newer one replaces it, and its rows count as dropped.

Stopping follows DESIGN §3: producers are not asked for more, the batches in
flight finish, every actor closes its node, then the actors are killed; a Ray
the flow started itself is shut down.  Errors: a node's exception comes back as
``RayTaskError`` around ``NodeFailure`` → ``NodeFailedError``; a dead actor →
``WorkerDiedError``; a stop timeout or a second cancel → actors killed →
``FlowKilledError``.

Not yet on Ray: ``FeedProducer`` / ``ResultsConsumer`` (host nodes), live stats
during the run (``stats()`` is final after it), shared-memory slots (Ray's object
store moves the arrays instead).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections import deque
from typing import Any, cast

from ..core.constants import REALTIME, FlowType
from ..core.errors import FlowError, FlowKilledError, NodeFailedError, WorkerDiedError
from ..core.graph import Stage
from ..core.host import FeedProducer, ResultsConsumer
from ..core.node import Node, ProducerNode
from ..core.options import FlowOptions
from .devices import assign_devices
from .ray_actor import NodeFailure, TaskRunnerActor
from .scheduler import RemoteTraceback
from .spec import TaskStats

try:
    import ray
    from ray.exceptions import RayActorError, RayTaskError
except ImportError as exc:  # pragma: no cover - scheduler_for() turns this into a clear message
    raise ImportError("the Ray engine needs Ray: pip install 'asyncflow[ray]'") from exc

__all__ = ["RayScheduler"]

log = logging.getLogger("asyncflow.ray")


class RayScheduler:
    """Runs a linearized flow as Ray actors (see the module docstring)."""

    def __init__(self, stages: tuple[Stage, ...], flow_type: FlowType, options: FlowOptions) -> None:
        self.stages = stages
        self.flow_type = flow_type
        self.options = options
        self.host_ready = asyncio.Event()
        self._actors: list[list[Any]] = []
        self._names: dict[str, str] = {}  # actor id -> task name
        self._stats: dict[str, TaskStats] = {}
        self._stop = False
        self._kill_reason: str | None = None
        self._kill_timer: asyncio.TimerHandle | None = None
        self._error: FlowError | None = None

    # -- the interface the Flow uses ---------------------------------------------
    def results_receiver(self, node: Node) -> None:
        return None

    def stats(self) -> dict[str, TaskStats]:
        return dict(self._stats)

    def request_stop(self, timeout: float | None = None) -> None:
        self._stop = True
        if timeout is not None:
            self._arm_kill(timeout, f"stop(timeout={timeout}) expired")

    def kill(self, reason: str) -> None:
        self._stop = True
        self._kill_reason = self._kill_reason or reason
        for actors in self._actors:
            for actor in actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:
                    pass

    def _arm_kill(self, delay: float, reason: str) -> None:
        loop = asyncio.get_running_loop()
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._kill_timer = loop.call_later(delay, self.kill, reason)

    # -- the run --------------------------------------------------------------------
    async def run(self) -> dict[str, TaskStats]:
        for stage in self.stages:
            if isinstance(stage.node, (FeedProducer, ResultsConsumer)):
                raise FlowError(
                    f"{stage.node.describe()}: host nodes (FeedProducer, ResultsConsumer) do not run on the "
                    "Ray engine yet; use the local engine",
                    node=stage.node.name,
                )
        self.host_ready.set()
        started_ray = False
        if not ray.is_initialized():
            ray.init(
                address=self.options.ray_address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            started_ray = True
        try:
            if not self._stop:
                try:
                    await self._start()
                    await self._pump()
                except asyncio.CancelledError:
                    await self._after_cancel()
                    raise
                finally:
                    await self._close_all()
        finally:
            if self._kill_timer is not None:
                self._kill_timer.cancel()
            self.kill("the flow ended")  # actors go, whatever happened
            if self._kill_reason == "the flow ended":
                self._kill_reason = None
            if started_ray:
                ray.shutdown()
        if self._error is not None:
            raise self._error
        if self._kill_reason is not None:
            raise FlowKilledError(
                f"tasks were ended hard ({self._kill_reason})", killed=tuple(self._names.values())
            )
        return self.stats()

    async def _start(self) -> None:
        names = [
            (stage.node.name if stage.width == 1 else f"{stage.node.name}[{w}]", stage.node)
            for stage in self.stages
            for w in range(stage.width)
        ]
        # Ray places GPU actors itself and sets their CUDA_VISIBLE_DEVICES: here we only
        # count the cluster's GPUs (or flow_options["gpus"]) to decide who gets one.
        wants_gpu = any(n.device_type == "gpu" for _, n in names)
        if self.options.gpus is not None:
            gpus = list(self.options.gpus)
        else:
            resources: dict[str, float] = ray.cluster_resources() if wants_gpu else {}  # type: ignore[no-untyped-call]
            gpus = [str(i) for i in range(int(resources.get("GPU", 0)))]
        devices = iter(assign_devices(names, gpus))
        remote = ray.remote(TaskRunnerActor)
        for stage in self.stages:
            row = []
            for w in range(stage.width):
                name = stage.node.name if stage.width == 1 else f"{stage.node.name}[{w}]"
                device = next(devices)
                # A GPU from Ray (num_gpus=1, Ray sets the device), none (CPU fallback:
                # hide every GPU), or a CPU node (leave the environment alone).
                actor = remote.options(num_cpus=0, num_gpus=1 if device else 0).remote(
                    stage, name, "" if device == "" else None
                )
                self._names[cast(Any, actor)._actor_id.hex()] = name
                row.append(actor)
            self._actors.append(row)
        await self._gather([a.open.remote() for actors in self._actors for a in actors])

    async def _gather(self, refs: list[Any]) -> list[Any]:
        try:
            return list(await asyncio.gather(*refs))
        except (RayTaskError, RayActorError) as exc:
            self._record(exc)
            raise _Stopped from exc

    def _record(self, exc: BaseException) -> None:
        if self._error is not None:
            return
        if isinstance(exc, RayTaskError):
            cause = exc.cause if hasattr(exc, "cause") else None
            if isinstance(cause, NodeFailure):
                self._error = _failure_error(cause)
                return
            if isinstance(cause, RayActorError):
                exc = cause
        if isinstance(exc, RayActorError):
            if self._kill_reason is not None:
                return  # we killed it
            actor_id = getattr(exc, "actor_id", None)
            task = self._names.get(actor_id, "?") if isinstance(actor_id, str) else "?"
            node = task.split("[")[0]
            self._error = WorkerDiedError(f"task {task} (node {node!r}) died: {exc}", node=node, task=task)
            return
        self._error = FlowError(f"the Ray engine failed: {exc}")

    async def _pump(self) -> None:
        opts = self.options
        window = max(2, opts.queue_size // opts.batch_size)
        producers = [s for s in self.stages if isinstance(s.node, ProducerNode)]
        nprod = len(producers)
        ended = [False] * nprod
        inflight: deque[Any] = deque()
        pending: tuple[Any, int] | None = None
        realtime = self.flow_type == REALTIME
        seq = 0
        try:
            while not self._stop and not all(ended):
                upstream: Any = None
                count = 0
                for i in range(nprod):
                    if ended[i] and upstream is None:
                        continue
                    actor = self._actors[i][0]
                    rows_ref, meta_ref = actor.produce.options(num_returns=2).remote(upstream, opts.batch_size)
                    count, ended[i] = (await self._gather([meta_ref]))[0]
                    upstream = rows_ref
                if upstream is None or count == 0:
                    continue
                if realtime and len(inflight) >= window:
                    if pending is not None:
                        self._drop(pending[1])
                    pending = (upstream, count)
                    ready, _ = ray.wait([inflight[0]], timeout=0)
                    if not ready:
                        await asyncio.sleep(0)
                        continue
                    await self._gather([inflight.popleft()])
                    upstream, count = pending
                    pending = None
                while len(inflight) >= window:
                    await self._gather([inflight.popleft()])
                ref = upstream
                for s in range(nprod, len(self.stages)):
                    actors = self._actors[s]
                    ref = actors[seq % len(actors)].process.remote(ref)
                inflight.append(ref)
                seq += 1
                await asyncio.sleep(0)
            if pending is not None:
                self._drop(pending[1])
            while inflight:
                await self._gather([inflight.popleft()])
        except _Stopped:
            # drain what is left so the actors can close cleanly
            for ref in inflight:
                try:
                    await ref
                except Exception:
                    pass

    def _drop(self, count: int) -> None:
        name = self.stages[0].node.name
        stats = self._stats.setdefault(f"{name}:dropped", TaskStats())
        stats.dropped += count

    async def _close_all(self) -> None:
        for stage, actors in zip(self.stages, self._actors, strict=False):
            for w, actor in enumerate(actors):
                name = stage.node.name if stage.width == 1 else f"{stage.node.name}[{w}]"
                try:
                    self._stats[name] = await actor.close.remote()
                except (RayTaskError, RayActorError) as exc:
                    self._record(exc)
        dropped = self._stats.pop(f"{self.stages[0].node.name}:dropped", None)
        if dropped is not None and self.stages[0].node.name in self._stats:
            self._stats[self.stages[0].node.name].dropped = dropped.dropped

    async def _after_cancel(self) -> None:
        """Cancelled: stop pulling, let what is in flight finish within stop_timeout, else kill."""
        self._stop = True
        self._arm_kill(self.options.stop_timeout, "run() was cancelled")


class _Stopped(Exception):
    """Internal: an error was recorded; stop the pump."""


def _failure_error(failure: NodeFailure) -> NodeFailedError:
    f = failure.failure
    error = NodeFailedError(
        f"{f.node_type} {f.node!r} (task {f.task}) failed in {f.phase}(): {f.summary}\n\n"
        f"Remote traceback:\n{f.traceback}",
        node=f.node,
        task=f.task,
    )
    cause: BaseException | None = None
    if f.exception is not None:
        try:
            cause = pickle.loads(f.exception)
        except Exception:
            cause = None
    error.__cause__ = cause if cause is not None else RemoteTraceback(f.traceback)
    return error
