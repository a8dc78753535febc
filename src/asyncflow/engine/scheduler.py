"""The parent side of a run: build the channels, start one process per task,
watch them, stop them, and turn what went wrong into a ``FlowError``.

Everything here runs on the parent's event loop thread; ``Flow.stop`` reaches
it through ``loop.call_soon_threadsafe``.  Every path out of ``run()`` (normal
end, error, stop, cancellation, a second Ctrl-C) goes through ``_shutdown``,
which returns only when every child has exited and been reaped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import pickle
import socket
import threading
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from typing import Any

from ..core.constants import REALTIME, FlowType
from ..core.errors import FlowError, FlowKilledError, NodeFailedError, WorkerDiedError
from ..core.graph import Stage
from ..core.host import FeedProducer, ResultsConsumer
from ..core.node import Node, ProducerNode
from ..core.options import FlowOptions
from .channel import Link, Receiver, Sender, connect
from .devices import assign_devices, available_gpus
from .logs import relog
from .pipes import PipeEnd, pipe_pair
from .pool import Pool, PooledTask
from .process import TaskProcess, get_context
from .spec import TaskFailure, TaskSpec, TaskStats
from .stopping import StopControl

__all__ = ["LocalScheduler", "RemoteTraceback"]

log = logging.getLogger("asyncflow")


class RemoteTraceback(Exception):
    """Stands in as ``__cause__`` for a child's exception that could not be pickled back."""


@dataclass
class _Task:
    spec: TaskSpec
    process: TaskProcess | PooledTask | None = None
    control: Link | None = None
    ready: bool = False
    stats: TaskStats | None = None
    exitcode: int | None = None
    exited: bool = False
    killed: bool = False
    watching_exit: bool = False
    failures: list[TaskFailure] = field(default_factory=list)

    @property
    def is_producer(self) -> bool:
        return isinstance(self.spec.stage.node, ProducerNode)


_tracker_lock = threading.Lock()
_tracker_users = 0
_tracker_was_running = True


def _tracker_acquire() -> None:
    global _tracker_users, _tracker_was_running
    with _tracker_lock:
        if _tracker_users == 0:
            rt = resource_tracker._resource_tracker
            _tracker_was_running = getattr(rt, "_fd", None) is not None
        _tracker_users += 1


def _tracker_release() -> None:
    """Stop the resource tracker that spawning started, so no process outlives the flow."""
    global _tracker_users
    with _tracker_lock:
        _tracker_users -= 1
        if _tracker_users == 0 and not _tracker_was_running:
            rt = resource_tracker._resource_tracker
            stop = getattr(rt, "_stop", None)
            if stop is not None:
                try:
                    stop()
                except Exception:
                    log.debug("could not stop the resource tracker", exc_info=True)


def _task_specs(
    stages: tuple[Stage, ...], flow_type: FlowType, options: FlowOptions
) -> tuple[list[TaskSpec], list[socket.socket], list[socket.socket | PipeEnd], dict[str, socket.socket]]:
    """Build every task's spec with its channels: pipes between tasks, socket pairs to the parent.

    Returns the specs, the parent's ends of the control links, the children's ends
    of every channel (closed in the parent once the children have started), and the
    parent's ends of the host links of FeedProducer / ResultsConsumer tasks.
    """
    names = [
        (stage.node.name if stage.width == 1 else f"{stage.node.name}[{w}]", stage.node)
        for stage in stages
        for w in range(stage.width)
    ]
    gpus = available_gpus(options.gpus) if any(n.device_type == "gpu" for _, n in names) else []
    devices = iter(assign_devices(names, gpus))
    parent_ends: list[socket.socket] = []
    child_ends: list[socket.socket | PipeEnd] = []
    host_ends: dict[str, socket.socket] = {}
    realtime = flow_type == REALTIME
    # outputs[s][i][g]: pipes of worker i of stage s to each worker of its g-th target;
    # inputs[t][j]: pipes of worker j of stage t from each worker of its source.
    outputs: list[list[list[list[PipeEnd]]]] = [[[] for _ in range(st.width)] for st in stages]
    inputs: list[list[list[PipeEnd]]] = [[[] for _ in range(st.width)] for st in stages]
    pos_in = [True] * len(stages)  # is stage s's input positional?
    pos_out = [True] * len(stages)
    for s, stage in enumerate(stages):  # a stage's source comes before it
        if stage.source >= 0:
            pos_in[s] = pos_out[stage.source]
        # REALTIME: free workers take the newest row; order comes back by dropping late rows.
        pos_out[s] = stage.width == 1 or (not realtime and stage.node.ordered and pos_in[s])
        for i in range(stage.width):
            for t, _ in stage.targets:
                group: list[PipeEnd] = []
                for j in range(stages[t].width):
                    a, b = pipe_pair()
                    group.append(a)
                    inputs[t][j].append(b)
                    child_ends += (a, b)
                outputs[s][i].append(group)
    specs: list[TaskSpec] = []
    for s, stage in enumerate(stages):
        for w in range(stage.width):
            mine, theirs = socket.socketpair()
            parent_ends.append(mine)
            child_ends.append(theirs)
            name = stage.node.name if stage.width == 1 else f"{stage.node.name}[{w}]"
            host_child = None
            if isinstance(stage.node, (FeedProducer, ResultsConsumer)):
                host_parent, host_child = socket.socketpair()
                host_ends[name] = host_parent
                child_ends.append(host_child)
            specs.append(
                TaskSpec(
                    name=name,
                    stage=stage,
                    worker=w,
                    flow_type=flow_type,
                    options=options,
                    control=theirs,
                    source=stages[stage.source].node.name if stage.source >= 0 else "",
                    inputs=tuple(inputs[s][w]),
                    in_positional=pos_in[s],
                    outputs=tuple(tuple(group) for group in outputs[s][w]),
                    out_columns=tuple(cols for _, cols in stage.targets),
                    out_targets=tuple(stages[t].node.name for t, _ in stage.targets),
                    out_positional=pos_out[s],
                    order_of=_order_of(stages, stage, realtime),
                    device=next(devices),
                    host_link=host_child,
                )
            )
    return specs, parent_ends, child_ends, host_ends


def _order_of(stages: tuple[Stage, ...], stage: Stage, realtime: bool) -> str | None:
    """REALTIME: the ordered nb_tasks node whose late rows this (single) task drops, if any."""
    if not realtime or stage.source < 0 or stage.width > 1:
        return None
    source = stages[stage.source]
    return source.node.name if source.width > 1 and source.node.ordered else None


class LocalScheduler(StopControl):
    """Runs a routed flow on this machine: one ``TaskProcess`` per task."""

    def __init__(
        self, stages: tuple[Stage, ...], flow_type: FlowType, options: FlowOptions, pool: Pool | None = None
    ) -> None:
        super().__init__()
        self.pool = pool
        self.stages = stages
        self.flow_type = flow_type
        self.options = options
        self.tasks: list[_Task] = []
        self._stop_sent = False
        self._go_sent = False
        self.feeders: list[tuple[FeedProducer, Sender]] = []
        self.results: dict[int, Receiver] = {}
        self.host_ready = asyncio.Event()
        self.host_closed = False  # the run is over: results() readers end
        self._host_socks: list[socket.socket] = []

    # -- requests (loop thread) ---------------------------------------------
    def kill(self, reason: str) -> None:
        """End every task hard now."""
        self._stop_requested = True
        self._kill_reason = self._kill_reason or reason
        for task in self.tasks:
            started = task.process is not None and task.process.pid is not None
            if started and task.process is not None and not task.exited and task.process.exitcode is None:
                task.killed = True
                try:
                    task.process.kill()
                except (OSError, ValueError):
                    pass
        self._poke()

    # -- the run ------------------------------------------------------------
    async def run(self) -> dict[str, TaskStats]:
        """Run the flow to its end; return each task's stats or raise ``FlowError``."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        _tracker_acquire()
        try:
            try:
                if not self._stop_requested:
                    await self._start()
                    await self._watch()
            except asyncio.CancelledError:
                await self._shutdown_after_cancel()
                raise
            except BaseException:
                self.kill("the parent was interrupted")
                await self._reap()
                raise
            finally:
                self._close_host()
                if self._kill_timer is not None:
                    self._kill_timer.cancel()
                for task in self.tasks:
                    if task.control is not None:
                        task.control.transport.abort() if task.control.transport else None
                    if task.process is not None and task.process.exitcode is not None:
                        task.process.close()
        finally:
            _tracker_release()
        error = self._error
        if error is None and self._kill_reason is not None:
            killed = tuple(t.spec.name for t in self.tasks if t.killed)
            error = FlowKilledError(
                f"tasks were ended hard ({self._kill_reason}): {', '.join(killed) or 'none still running'}",
                killed=killed,
            )
        if error is not None:
            raise error
        return self.stats()

    @property
    def started(self) -> bool:
        """Whether every task has opened its node and the producers were told to go."""
        return self._go_sent

    def stats(self) -> dict[str, TaskStats]:
        """Each task's latest stats (live while the flow runs)."""
        return {t.spec.name: t.stats or TaskStats() for t in self.tasks}

    async def _start(self) -> None:
        # Processes first (a pool at its max_processes may make us wait), channels after.
        count = sum(stage.width for stage in self.stages)
        workers = await self.pool.acquire(count) if self.pool is not None else []
        specs, parent_ends, child_ends, host_ends = _task_specs(self.stages, self.flow_type, self.options)
        self._host_socks = list(host_ends.values())
        context = get_context(self.options.start_method)
        try:
            for k, spec in enumerate(specs):
                task = _Task(spec)
                self.tasks.append(task)
                if self.pool is not None:
                    task.process = self.pool.task(workers[k], spec)
                else:
                    task.process = TaskProcess(spec, context)
                try:
                    task.process.start()
                except Exception as exc:
                    raise FlowError(
                        f"{spec.stage.node.describe()} (task {spec.name}) could not be started: {exc}",
                        node=spec.node_name,
                        task=spec.name,
                    ) from exc
                assert self._loop is not None
                self._loop.add_reader(task.process.sentinel, self._on_exit, task)
                task.watching_exit = True
        finally:
            for sock in child_ends:
                sock.close()
            if self.pool is not None:
                for worker in workers[len(self.tasks) :]:  # a task failed to start: the rest go back
                    self.pool._release(worker, healthy=True)
        # Wired to the end even if run() is cancelled meanwhile: a task whose control
        # link is not wired would never hear "stop" (a cancel in the first
        # milliseconds would then wait for the kill).
        wiring = asyncio.ensure_future(self._connect_controls(parent_ends, host_ends))
        try:
            await asyncio.shield(wiring)
        except asyncio.CancelledError:
            await wiring
            raise

    async def _connect_controls(self, parent_ends: list[socket.socket], host_ends: dict[str, socket.socket]) -> None:
        for task, sock in zip(self.tasks, parent_ends, strict=False):
            link = await connect(sock, f"parent<{task.spec.name}>")
            link.on_event = functools.partial(self._on_control, task)
            task.control = link
            self._on_control(task)
        for sock in parent_ends[len(self.tasks) :]:
            sock.close()
        await self._connect_host(host_ends)

    async def _connect_host(self, host_ends: dict[str, socket.socket]) -> None:
        """The parent's side of FeedProducer / ResultsConsumer tasks."""
        options = self.options

        def on_feed_event(link: Link, node: FeedProducer, credit: Any) -> None:
            # A FeedProducer's task does not stop at "stop": it asks (a message on
            # this link) for its feed to end, and reads it to that end: put() then
            # refuses new items and the feed ends behind those it accepted, so none
            # of them is lost (see TaskRunner.connect_host).
            if link.messages:
                link.messages.clear()
                node._stop_feed()
            if credit is not None:
                credit()  # the sender's: wakes a put() waiting for room

        for task in self.tasks:
            sock = host_ends.get(task.spec.name)
            if sock is None:
                continue
            link = await connect(sock, f"parent<{task.spec.name}:host>")
            node = task.spec.stage.node
            if isinstance(node, FeedProducer):
                sender = Sender.for_flow([link], options)
                self.feeders.append((node, sender))
                node._attach(sender)
                link.on_event = functools.partial(on_feed_event, link, node, link.on_event)
                link.on_event()  # a message that came while connecting
            else:
                receiver = Receiver.for_flow([link], options)
                self.results[id(node)] = receiver
        self.host_ready.set()

    def results_receiver(self, node: Node) -> Receiver | None:
        """The parent's receiver of a ResultsConsumer's items (``None`` before start)."""
        return self.results.get(id(node))

    def _close_host(self) -> None:
        self.host_closed = True
        for stage in self.stages:
            if isinstance(stage.node, FeedProducer):
                stage.node._detach()  # put() fails, also one waiting for a run that never started
        for node, sender in self.feeders:
            node._detach()
            for link in sender.links:
                link.close()
            sender.close()
        for receiver in self.results.values():
            for link in receiver.links:
                link.close()
            receiver.close()
        for sock in self._host_socks:
            sock.close()
        self.host_ready.set()  # wake readers waiting for a run that is over

    def _on_exit(self, task: _Task) -> None:
        assert self._loop is not None and task.process is not None
        if task.exited:
            return
        if not task.watching_exit:
            return
        code = task.process.exitcode
        if code is None:  # fds close a moment before the process can be reaped
            self._loop.remove_reader(task.process.sentinel)
            self._loop.call_later(0.002, self._on_exit, task)
            return
        task.watching_exit = False
        self._loop.remove_reader(task.process.sentinel)
        task.exited = True
        task.exitcode = code
        if (task.stats is None or not task.stats.finished) and not task.killed and self._error is None:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            node = task.spec.stage.node
            hint = ""
            if not task.ready and code > 0:
                # It died before its node opened: usually while starting (see its stderr).
                hint = (
                    " while starting (its stderr says why; a script that runs a flow needs "
                    "`if __name__ == '__main__':`, since tasks are spawned and import the script)"
                )
            self._set_error(
                WorkerDiedError(
                    f"{node.describe()} (task {task.spec.name}, pid {task.process.pid}) {how} "
                    f"without finishing its work{hint}",
                    node=node.name,
                    task=task.spec.name,
                    exitcode=code,
                )
            )
        self._poke()

    def _on_control(self, task: _Task) -> None:
        link = task.control
        if link is None:
            return
        while link.messages:
            message = link.messages.popleft()
            kind = message[0]
            if kind == "ready":
                task.ready = True
            elif kind == "log":
                relog(task.spec.name, message[1])
            elif kind == "stats":
                if task.stats is None or not task.stats.finished:
                    task.stats = message[1]
            elif kind == "done":
                task.stats = message[1]
                link.close()  # the child waits for this before it exits
            elif kind == "error":
                failure: TaskFailure = message[1]
                task.failures.append(failure)
                if self._error is None:
                    self._set_error(_failure_error(failure))
                else:
                    log.error("%s (task %s) also failed: %s", failure.node, failure.task, failure.summary)
        self._poke()

    def _set_error(self, error: FlowError) -> None:
        self._error = error
        self._stop_requested = True
        # Tasks stuck in a node must not hold the flow forever after a failure.
        timeout = self.options.stop_timeout
        self._arm_kill(timeout, f"they did not stop within {timeout}s after {error.task or error.node} failed")

    def _drive(self) -> None:
        """Send what the state calls for: "go" when all are ready, "stop" when asked."""
        producers = [t for t in self.tasks if t.is_producer]
        if self._stop_requested and not self._stop_sent:
            self._stop_sent = True
            for task in producers:
                if task.control is not None:
                    task.control.send_message(("stop",))
        if not self._go_sent and all(t.ready or t.exited for t in self.tasks):
            self._go_sent = True
            for task in producers:
                if task.control is not None:
                    task.control.send_message(("go",))

    async def _watch(self) -> None:
        assert self._changed is not None
        while True:
            self._drive()
            if all(t.exited for t in self.tasks):
                return
            self._changed.clear()
            await self._changed.wait()

    async def _reap(self) -> None:
        """Wait until every started process has exited (after ``kill`` this is quick)."""
        assert self._changed is not None
        while not all(t.exited for t in self.tasks if t.process is not None and t.process.pid is not None):
            self._changed.clear()
            await self._changed.wait()

    async def _shutdown_after_cancel(self) -> None:
        """Cancelled: stop gracefully, kill after ``stop_timeout``; a second cancel kills now."""
        self.request_stop()
        self._arm_kill(self.options.stop_timeout, "run() was cancelled")
        watcher = asyncio.ensure_future(self._watch())
        while not watcher.done():
            try:
                await asyncio.shield(watcher)
            except asyncio.CancelledError:
                self.kill("run() was cancelled again")
        self._kill_reason = None  # the caller asked for it: CancelledError says enough


def _failure_error(failure: TaskFailure) -> NodeFailedError:
    message = (
        f"{failure.node_type} {failure.node!r} (task {failure.task}) failed in {failure.phase}(): "
        f"{failure.summary}\n\nRemote traceback:\n{failure.traceback}"
    )
    error = NodeFailedError(message, node=failure.node, task=failure.task)
    cause: BaseException | None = None
    if failure.exception is not None:
        try:
            cause = pickle.loads(failure.exception)
        except Exception:
            cause = None
    error.__cause__ = cause if cause is not None else RemoteTraceback(failure.traceback)
    return error
