"""Warm task processes that flows reuse: ``asyncflow.Pool``.

A flow run without a pool spawns one interpreter per task, which imports
asyncflow, numpy and the user's modules, and joins them again at the end: about
0.2 s for a 3-task flow on the development machine, all of it start-up.  A service
that runs a short flow per request pays that every time.  A pool keeps task
processes alive between flows::

    async with asyncflow.Pool() as pool:       # the processes start once
        await flow.run(pool=pool)              # tasks go to idle warm processes
        await other_flow.run(pool=pool)        # ... again, concurrently too

Each pool process is an ``aiomultiprocess.Process`` (the same child set-up as a
flow's own tasks: uvloop, SIGINT ignored, ``PR_SET_PDEATHSIG``) that waits on a
*dispatch* socket for work.  A flow hands a process a task by sending its
``TaskSpec`` pickled, with the task's channel ends (pipes, the control and host
sockets) passed as file descriptors over that socket (``socket.send_fds``); the
process runs ``task.run_task`` on its loop, exactly as a fresh task process would,
writes one byte when the task is over, and waits for the next one.  While a flow
runs, each of its tasks has a process of its own (one task per process holds).

Decisions:

- Size: ``processes`` (default: the number of CPUs) start with the pool.  A flow
  that needs more processes than are idle gets more at once, and the pool keeps
  them, up to ``max_processes`` (default: no limit).  At that limit a flow waits
  until enough processes are free; a flow that needs
  more tasks than ``max_processes`` fails at once, naming both numbers.
- A process is replaced after ``max_tasks`` tasks (``maxtasksperchild``'s idea),
  after a task it ran was killed or crashed, and after a task that had a GPU (its
  ``CUDA_VISIBLE_DEVICES`` is set for that task only, before the node opens; a
  library that initialised CUDA keeps it for the life of the process).
- What persists in a pool process after a task: imported modules and their
  module-level state, like any pool.  The node is closed and dropped, the task's
  channels and log handler are gone, and the garbage collector runs once the
  process has been idle for 50 ms (not at once: a full collection takes longer
  than a warm flow, and a flow dispatched right after the last one would wait for it).
- The pool's processes never outlive the application: ``close()`` (or leaving the
  ``async with``) ends them, waiting for tasks still running; they die with their
  parent (``PR_SET_PDEATHSIG``), and exit when the dispatch socket closes.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import pickle
import socket
import struct
import sys
from collections import deque
from collections.abc import Iterable
from typing import Any

import aiomultiprocess
import uvloop
from aiomultiprocess.types import Unit

from .pipes import PipeEnd
from .spec import TaskSpec

__all__ = ["Pool", "PooledTask", "dump_job", "load_job", "serve"]

log = logging.getLogger("asyncflow")

_HEADER = struct.Struct("<QI")  # body length, number of descriptors
_DONE = b"d"
_COLLECT_AFTER = 0.05  # seconds idle after a task before its garbage is collected
_MAX_FDS = 253  # SCM_MAX_FD


class _FdPickler(pickle.Pickler):
    """Pickles a ``TaskSpec`` with its sockets and pipe ends as indices into ``fds``."""

    def __init__(self, file: io.BytesIO, fds: list[int]) -> None:
        super().__init__(file, protocol=5)
        self.fds = fds

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, PipeEnd):
            self.fds += (obj.read_fd, obj.write_fd)
            return ("pipe", len(self.fds) - 2)
        if isinstance(obj, socket.socket):
            self.fds.append(obj.fileno())
            return ("sock", len(self.fds) - 1, int(obj.family), int(obj.type))
        return None


class _FdUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, fds: list[int]) -> None:
        super().__init__(file)
        self.fds = fds

    def persistent_load(self, pid: Any) -> Any:
        if pid[0] == "pipe":
            return PipeEnd(self.fds[pid[1]], self.fds[pid[1] + 1])
        _, index, family, kind = pid
        return socket.socket(family, kind, fileno=self.fds[index])


def dump_job(spec: TaskSpec) -> tuple[bytes, list[int]]:
    """``spec`` pickled, and the descriptors its channel ends stand for."""
    buf = io.BytesIO()
    fds: list[int] = []
    _FdPickler(buf, fds).dump(spec)
    return buf.getvalue(), fds


def load_job(body: bytes, fds: list[int]) -> TaskSpec:
    """The ``TaskSpec`` of ``dump_job``, its channel ends on the received descriptors."""
    spec: TaskSpec = _FdUnpickler(io.BytesIO(body), fds).load()
    return spec


async def _read_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        data = await loop.sock_recv(sock, min(n, 1 << 20))
        if not data:
            return None
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


async def _next_job(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> tuple[bytes, list[int]] | None:
    """The next job on the dispatch socket (``None`` when the pool closed it)."""
    readable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(sock.fileno(), ready)
    try:
        await readable
    finally:
        loop.remove_reader(sock.fileno())
    # The header and the descriptors come in one message; the body after it.
    head, fds, _, _ = socket.recv_fds(sock, _HEADER.size, _MAX_FDS)
    if not head:
        return None
    if len(head) < _HEADER.size:
        rest = await _read_exactly(loop, sock, _HEADER.size - len(head))
        if rest is None:
            return None
        head += rest
    size, count = _HEADER.unpack(head)
    if len(fds) != count:
        raise RuntimeError(f"pool: a job came with {len(fds)} descriptors, {count} expected")
    body = await _read_exactly(loop, sock, size)
    return None if body is None else (body, fds)


async def serve(sock: socket.socket) -> None:
    """The pool process's loop: run the tasks that come on ``sock`` one at a time."""
    from .task import run_task  # the engine's task loop, as a fresh task process runs it

    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES")
    collect = False
    while True:
        waiting = asyncio.ensure_future(_next_job(loop, sock))
        if collect:
            # Collect the last task's garbage only once no job is waiting: a flow
            # dispatched right after the last one must not wait for the collector.
            done, _ = await asyncio.wait({waiting}, timeout=_COLLECT_AFTER)
            if not done:
                gc.collect()
            collect = False
        job = await waiting
        if job is None:
            return
        spec = load_job(*job)
        level = spec.options.log_level
        logging.getLogger().setLevel(level if level is not None else logging.WARNING)
        if spec.device is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = spec.device
        try:
            await run_task(spec)
        finally:
            del spec, job
            for stream in (sys.stdout, sys.stderr):  # what the task printed, out now (no exit flushes it)
                try:
                    stream.flush()
                except (OSError, ValueError, AttributeError):
                    pass
            if inherited is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = inherited
        await loop.sock_sendall(sock, _DONE)
        collect = True


class _Worker:
    """One pool process and the parent's end of its dispatch socket."""

    def __init__(self, context: Any, log_level: int | None) -> None:
        from .process import _child_init

        self.sock, theirs = socket.socketpair()
        unit = Unit(
            target=serve,
            args=(theirs,),
            kwargs={},
            namespace=None,
            initializer=_child_init,
            initargs=(os.getpid(), log_level, None),
            loop_initializer=uvloop.new_event_loop,
        )
        self.process: Any = context.Process(
            target=aiomultiprocess.Process.run_async, args=(unit,), name="asyncflow:pool", daemon=False
        )
        try:
            self.process.start()
        finally:
            theirs.close()
        self.tasks = 0
        self.busy = False
        self.broken = False  # killed, crashed, or ran a GPU task: replaced, not reused

    @property
    def pid(self) -> int | None:
        pid: int | None = self.process.pid
        return pid

    @property
    def alive(self) -> bool:
        return self.process.exitcode is None

    def dispatch(self, spec: TaskSpec) -> None:
        """Hand ``spec`` to the process (a blocking send: the socket's buffer takes it)."""
        body, fds = dump_job(spec)
        if len(fds) > _MAX_FDS:
            raise RuntimeError(f"pool: task {spec.name} has {len(fds)} channel ends, more than one message carries")
        self.sock.setblocking(True)
        socket.send_fds(self.sock, [_HEADER.pack(len(body), len(fds))], fds)
        self.sock.sendall(body)
        self.sock.setblocking(False)
        self.tasks += 1
        if spec.device is not None:
            self.broken = True

    def end(self) -> None:
        """Ask the process to exit (it does once its current task, if any, is over)."""
        try:
            self.sock.close()
        except OSError:
            pass


class PooledTask:
    """A task running in a pool process: what the scheduler needs of a task's process.

    ``sentinel`` is the dispatch socket: readable when the task is over (a byte)
    or when the process died (end of file).  ``exitcode`` is 0 once the task is
    over, the process's exit code if it died, ``None`` before either.
    """

    def __init__(self, pool: Pool, worker: _Worker, spec: TaskSpec) -> None:
        self.pool = pool
        self.worker = worker
        self.spec = spec
        self._done = False
        self._ended = False  # the dispatch socket said the process is gone
        self._released = False

    def start(self) -> None:
        self.worker.dispatch(self.spec)

    @property
    def pid(self) -> int | None:
        return self.worker.pid

    @property
    def sentinel(self) -> int:
        return self.worker.sock.fileno()

    @property
    def exitcode(self) -> int | None:
        if self._done:
            return 0
        if not self._ended:
            try:
                data = self.worker.sock.recv(1)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == _DONE:
                self._done = True
                return 0
            if data == b"":
                self._ended = True
        if self._ended:
            code: int | None = self.worker.process.exitcode
            return code
        return None

    def kill(self) -> None:
        self.worker.broken = True
        self.worker.process.kill()

    def close(self) -> None:
        """The task is over (or its process is gone): give the process back to the pool."""
        if not self._released:
            self._released = True
            self.pool._release(self.worker, healthy=self._done)


class Pool:
    """Warm task processes that flows reuse (see the module docstring).

    ``processes``: how many start with the pool (default: the number of CPUs);
    ``max_processes``: the most it grows to (default: no limit; flows then wait);
    ``max_tasks``: tasks a process runs before it is replaced; ``log_level``: the
    processes' logging level between tasks (each task sets its flow's
    ``flow_options["log_level"]`` while it runs).
    """

    def __init__(
        self,
        processes: int | None = None,
        *,
        max_processes: int | None = None,
        max_tasks: int = 100,
        log_level: int | None = None,
    ) -> None:
        if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int) or processes < 0):
            raise ValueError(f"Pool(processes=...) must be an int >= 0, got {processes!r}")
        if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1:
            raise ValueError(f"Pool(max_tasks=...) must be an int >= 1, got {max_tasks!r}")
        self.processes = (os.cpu_count() or 1) if processes is None else processes
        floor = max(1, self.processes)
        if max_processes is not None and (
            isinstance(max_processes, bool) or not isinstance(max_processes, int) or max_processes < floor
        ):
            raise ValueError(
                f"Pool(max_processes=...) must be an int >= max(1, processes) = {floor}, got {max_processes!r}"
            )
        self.max_processes = max_processes
        self._freed: asyncio.Event | None = None  # set when a process goes back (max_processes)
        self.max_tasks = max_tasks
        self.log_level = log_level
        self._idle: deque[_Worker] = deque()
        self._all: list[_Worker] = []
        self._context: Any = None
        self._closed = False
        self._started = False

    @property
    def size(self) -> int:
        """Processes alive now (idle and busy)."""
        return sum(1 for w in self._all if w.alive)

    @property
    def idle(self) -> int:
        """Processes waiting for a task now."""
        return len(self._idle)

    async def __aenter__(self) -> Pool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the pool's processes (once)."""
        if self._closed:
            raise RuntimeError("Pool: this pool is closed; create a new one")
        if self._started:
            return
        self._started = True
        from .process import get_context
        from .scheduler import _tracker_acquire

        _tracker_acquire()  # held until close(): the spawn resource tracker outlives each flow
        self._context = get_context("spawn")
        for _ in range(self.processes):
            self._spawn()

    def _spawn(self, *, idle: bool = True) -> _Worker:
        worker = _Worker(self._context, self.log_level)
        self._all.append(worker)
        if idle:
            self._idle.append(worker)
        return worker

    @staticmethod
    def _fit(workers: Iterable[_Worker]) -> int:
        """How many of ``workers`` are alive and fit for another task."""
        return sum(1 for w in workers if w.alive and not w.broken)

    async def acquire(self, count: int) -> list[_Worker]:
        """``count`` processes for one flow's tasks: idle ones first, new ones for the rest.

        At ``max_processes``, waits until enough are free.
        """
        if self._closed or not self._started:
            raise RuntimeError(
                "Pool: start the pool first (async with Pool() as pool: ...)"
                if not self._closed
                else "Pool: this pool is closed; create a new one"
            )
        limit = self.max_processes
        if limit is not None:
            if count > limit:
                raise ValueError(f"Pool: this flow has {count} tasks, more than the pool's max_processes ({limit})")
            if self._freed is None:
                self._freed = asyncio.Event()
            # Room: the idle processes, and what the pool may still start.
            while not self._closed and self._fit(self._idle) + limit - self._fit(self._all) < count:
                self._freed.clear()
                await self._freed.wait()
            if self._closed:
                raise RuntimeError("Pool: this pool is closed; create a new one")
        taken: list[_Worker] = []
        while len(taken) < count:
            worker = self._idle.popleft() if self._idle else self._spawn(idle=False)
            if not worker.alive or worker.broken:
                self._retire(worker)
                continue
            worker.busy = True
            taken.append(worker)
        return taken

    def task(self, worker: _Worker, spec: TaskSpec) -> PooledTask:
        """The scheduler's handle on ``spec`` run by ``worker``."""
        return PooledTask(self, worker, spec)

    def _release(self, worker: _Worker, *, healthy: bool) -> None:
        worker.busy = False
        if not healthy or worker.broken or not worker.alive or worker.tasks >= self.max_tasks or self._closed:
            self._retire(worker)
            if not self._closed and self._fit(self._all) < self.processes:
                self._spawn()
        else:
            self._idle.append(worker)
        self._notify()

    def _notify(self) -> None:
        """Wake flows waiting for processes (``max_processes``)."""
        if self._freed is not None:
            self._freed.set()

    def _retire(self, worker: _Worker) -> None:
        worker.broken = True
        worker.end()
        if worker in self._idle:
            self._idle.remove(worker)

    async def close(self, timeout: float = 10.0) -> None:
        """End every process: idle ones now, busy ones once their task is over (killed after ``timeout``)."""
        if self._closed:
            return
        self._closed = True
        self._notify()
        for worker in list(self._idle):
            self._retire(worker)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                running = [w for w in self._all if w.process.pid is not None and w.process.exitcode is None]
                for worker in running:
                    if not worker.busy:
                        worker.end()
                if not running:
                    break
                if loop.time() > deadline:
                    for worker in running:
                        worker.process.kill()
                await asyncio.sleep(0.01)
        finally:
            for worker in self._all:
                worker.end()
                if worker.process.pid is not None:
                    worker.process.join(timeout=1)
                    try:
                        worker.process.close()
                    except ValueError:
                        pass
            if self._started:
                from .scheduler import _tracker_release

                _tracker_release()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.size} processes, {self.idle} idle"
        return f"<asyncflow.Pool {state}>"


if sys.platform == "win32":  # pragma: no cover - fds cannot be passed there
    raise ImportError("asyncflow.Pool needs a POSIX system (file descriptors passed over a Unix socket)")
