"""Hand-written floors: what plain ``multiprocessing`` (spawn) does on the same workloads.

Each function runs its own processes and returns a ``Rate`` (``.per_s`` is
items/s or frames/s in the steady state, ``.startup_s`` the time until the first
item reached the consumer):

- ``queue_chain(n, batch=1, per_item=False)``: producer → middle → consumer, three
  processes joined by two ``multiprocessing.Queue``; ``batch=1`` puts one int a ``put``
  (a), ``batch=256`` puts lists of 256 (b): the producer puts ``list(range(...))``, the
  middle passes each list on, the consumer adds up their lengths, so no Python runs
  per item (the transport alone).  ``per_item=True`` is the same chain written the way
  a pipeline with per-item stages is: the producer calls a counter's ``next()`` per
  item, the middle an identity function per item, the consumer a ``consume()`` per
  item (what asyncflow's per-item nodes do, around the same transport);
  ``nodes=True`` makes those calls to asyncflow's own per-item benchmark nodes
  (``IntProducer.next``, ``IdentityProcessor.process``, ``StampConsumer.consume``),
  so that the two sides run the same Python per item and differ by the engine alone.
- ``pickled_frames(n)``: 1080p uint8 frames pickled through the same chain (c).
- ``shm_frames(n)``: frames through a small pool of ``multiprocessing.shared_memory``
  slots: the producer copies a frame into a free slot and sends its index, the
  middle passes the index on, the consumer copies the frame out and sends the slot
  back on a return queue (d).
- ``pool_map(n, workers, loops)``: ``multiprocessing.Pool`` (spawn) mapping a pure-Python
  spin of ``loops`` iterations (~4 ms) over ``n`` items (e), for the speedup curve.
- ``queue_chain_latency(rate, seconds)``: the one-item chain paced at ``rate`` items/s,
  each item a ``time.monotonic_ns()`` stamp; returns the consumer's latencies.
- ``idle_process_memory()``: RSS / USS / fds of a bare Python interpreter that waits.

All processes start together behind a barrier, so the steady state is the
pipeline's, not one process draining a queue that filled while the next was
still starting.  Queues are bounded (about 1024 items, or 4 frames, in flight per
hop), as asyncflow's channels are.

Run ``python -m benchmarks.baselines [--quick]`` to print them alone.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable, Sequence
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from ._common import FRAME_SHAPE, Rate, calibrate_spin, latency_summary, now_ns, spin, steady_rate

__all__ = [
    "idle_process_memory",
    "pickled_frames",
    "pool_map",
    "queue_chain",
    "queue_chain_latency",
    "shm_frames",
]

#: Items in flight per hop (the chains' queues are bounded to about this).
IN_FLIGHT_ITEMS = 1024
#: Frames in flight per hop, and the number of shared-memory slots.
IN_FLIGHT_FRAMES = 4
#: Seconds a baseline may take before it is abandoned.
TIMEOUT_S = 300.0


def _ctx() -> SpawnContext:
    return mp.get_context("spawn")


# -- the three roles of a chain (top-level: spawn imports them by name) ---------------------------------


class _Counter:
    """The per-item chain's source: ``next()`` returns 0, 1, 2, ..."""

    def __init__(self) -> None:
        self.i = 0

    def next(self) -> int:
        value = self.i
        self.i += 1
        return value


def _identity(x: Any) -> Any:
    return x


class _Sink:
    """The per-item chain's sink: ``consume()`` counts."""

    def __init__(self) -> None:
        self.count = 0

    def consume(self, x: Any) -> None:
        self.count += 1


# The per-item chain's source, middle function and sink (an object with ``consume``
# and ``count``): bare ones, or with ``nodes=True`` asyncflow's own per-item nodes,
# the very classes the per-item flow runs (imported only then: asyncflow stays out
# of the other chains' processes).


def _source(nodes: bool, n: int) -> Callable[[], Any]:
    if not nodes:
        return _Counter().next
    from .workloads import ItemIntProducer

    return ItemIntProducer(0, n - 1, 0).next


def _function(nodes: bool) -> Callable[[Any], Any]:
    if not nodes:
        return _identity
    from .workloads import ItemIdentityProcessor

    return ItemIdentityProcessor().process


def _sink(nodes: bool) -> Any:
    if not nodes:
        return _Sink()
    from .workloads import ItemStampConsumer

    return ItemStampConsumer(os.devnull)


def _middle(q_in: Queue[Any], q_out: Queue[Any], barrier: Barrier, per_item: bool = False, nodes: bool = False) -> None:
    if per_item:
        f = _function(nodes)
    barrier.wait()
    get, put = q_in.get, q_out.put
    if per_item:
        while (x := get()) is not None:
            put([f(item) for item in x])
        put(None)
        return
    while True:
        x = get()
        put(x)
        if x is None:
            break


def _int_producer(
    q_out: Queue[Any], barrier: Barrier, n: int, batch: int, per_item: bool = False, nodes: bool = False
) -> None:
    if per_item:
        nxt = _source(nodes, n)
    barrier.wait()
    put = q_out.put
    if batch == 1:
        for i in range(n):
            put(i)
    elif per_item:
        for start in range(0, n, batch):
            put([nxt() for _ in range(min(batch, n - start))])
    else:
        for start in range(0, n, batch):
            put(list(range(start, min(n, start + batch))))
    put(None)


def _int_consumer(
    q_in: Queue[Any], barrier: Barrier, batch: int, results: Queue[Any], per_item: bool = False, nodes: bool = False
) -> None:
    if per_item:
        sink = _sink(nodes)
    barrier.wait()
    get = q_in.get
    x = get()
    t_first = now_ns()
    first = 1 if batch == 1 else len(x)
    count = first
    if batch == 1:
        while get() is not None:
            count += 1
    elif per_item:
        consume = sink.consume
        for item in x:
            consume(item)
        while (x := get()) is not None:
            for item in x:
                consume(item)
        count = sink.count
    else:
        while (x := get()) is not None:
            count += len(x)
    results.put((count, first, t_first, now_ns()))


def _frame_producer(q_out: Queue[Any], barrier: Barrier, n: int) -> None:
    import numpy as np

    base = np.zeros(FRAME_SHAPE, np.uint8)
    barrier.wait()
    for i in range(n):
        # Queue.put pickles in a feeder thread, later: hand it a frame nobody mutates.
        frame = base.copy()
        frame[i % FRAME_SHAPE[0], 0, 0] = i & 255
        q_out.put(frame)
    q_out.put(None)


def _frame_consumer(q_in: Queue[Any], barrier: Barrier, results: Queue[Any]) -> None:
    barrier.wait()
    frame = q_in.get()
    t_first = now_ns()
    touched = int(frame[0, 0, 0])
    count = 1
    while (frame := q_in.get()) is not None:
        touched += int(frame[0, 0, 0])
        count += 1
    results.put((count, 1, t_first, now_ns()))


def _shm_producer(name: str, q_free: Queue[Any], q_out: Queue[Any], barrier: Barrier, n: int) -> None:
    from multiprocessing.shared_memory import SharedMemory

    import numpy as np

    shm = SharedMemory(name=name)
    try:
        slots = np.ndarray((IN_FLIGHT_FRAMES, *FRAME_SHAPE), np.uint8, buffer=shm.buf)
        frame = np.zeros(FRAME_SHAPE, np.uint8)
        barrier.wait()
        for i in range(n):
            frame[i % FRAME_SHAPE[0], 0, 0] = i & 255
            slot = q_free.get()
            slots[slot] = frame  # the one copy in
            q_out.put(slot)
        q_out.put(None)
        del slots
    finally:
        shm.close()


def _shm_consumer(name: str, q_in: Queue[Any], q_free: Queue[Any], barrier: Barrier, results: Queue[Any]) -> None:
    from multiprocessing.shared_memory import SharedMemory

    import numpy as np

    shm = SharedMemory(name=name)
    try:
        slots = np.ndarray((IN_FLIGHT_FRAMES, *FRAME_SHAPE), np.uint8, buffer=shm.buf)
        out = np.empty(FRAME_SHAPE, np.uint8)
        barrier.wait()
        count = 0
        t_first = 0
        touched = 0
        while (slot := q_in.get()) is not None:
            np.copyto(out, slots[slot])  # the one copy out
            q_free.put(slot)
            touched += int(out[0, 0, 0])
            count += 1
            if count == 1:
                t_first = now_ns()
        results.put((count, 1, t_first, now_ns()))
        del slots
    finally:
        shm.close()


def _paced_producer(q_out: Queue[Any], barrier: Barrier, n: int, rate: float) -> None:
    barrier.wait()
    period_ns = 1e9 / rate
    t0 = now_ns()
    for i in range(n):
        delay = t0 + i * period_ns - now_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        q_out.put(now_ns())
    q_out.put(None)


def _latency_consumer(q_in: Queue[Any], barrier: Barrier, results: Queue[Any]) -> None:
    barrier.wait()
    latencies = []
    while (stamp := q_in.get()) is not None:
        latencies.append(now_ns() - stamp)
    results.put(latencies)


# -- running a chain ---------------------------------------------------------------------------------------


def _collect(results: Queue[Any], procs: Sequence[SpawnProcess], timeout: float) -> Any:
    """The consumer's result; raise if a process died first or it took longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return results.get(timeout=0.2)
        except queue.Empty:
            pass
        dead = [p for p in procs if p.exitcode not in (None, 0)]
        if dead:
            raise RuntimeError(f"baseline process {dead[0].name} exited with code {dead[0].exitcode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"baseline did not finish within {timeout:.0f} s")


def _run(
    ctx: SpawnContext,
    roles: Sequence[tuple[Callable[..., None], tuple[Any, ...]]],
    barrier: Barrier,
    results: Queue[Any],
) -> tuple[Any, int, int]:
    """Start ``roles`` (each waits on ``barrier``), return (the consumer's result, t_start, t_end)."""
    t_start = now_ns()
    procs = [ctx.Process(target=fn, args=args, name=f"baseline-{fn.__name__.strip('_')}") for fn, args in roles]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=TIMEOUT_S)
        result = _collect(results, procs, TIMEOUT_S)
        for p in procs:
            p.join(timeout=TIMEOUT_S)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    return result, t_start, now_ns()


def _chain(
    ctx: SpawnContext,
    producer: tuple[Callable[..., None], tuple[Any, ...]],
    consumer: tuple[Callable[..., None], tuple[Any, ...]],
    q1: Queue[Any],
    q2: Queue[Any],
    barrier: Barrier,
    results: Queue[Any],
    per_item: bool = False,
    nodes: bool = False,
) -> tuple[Any, int, int]:
    return _run(ctx, [producer, (_middle, (q1, q2, barrier, per_item, nodes)), consumer], barrier, results)


def queue_chain(n: int, batch: int = 1, per_item: bool = False, nodes: bool = False) -> Rate:
    """(a) ``batch=1``: one int a ``put``; (b) ``batch=256``: lists of 256 ints.  Items/s.

    ``per_item=True`` (with ``batch > 1``): a function call per item in each process;
    ``nodes=True``: the calls are asyncflow's per-item nodes' methods.
    """
    ctx = _ctx()
    size = max(2, IN_FLIGHT_ITEMS // batch)
    q1, q2, results = ctx.Queue(size), ctx.Queue(size), ctx.Queue()
    barrier = ctx.Barrier(4)
    per_item = per_item and batch > 1
    (count, first, t_first, t_last), t_start, t_end = _chain(
        ctx,
        (_int_producer, (q1, barrier, n, batch, per_item, nodes)),
        (_int_consumer, (q2, barrier, batch, results, per_item, nodes)),
        q1,
        q2,
        barrier,
        results,
        per_item,
        nodes,
    )
    if count != n:
        raise RuntimeError(f"queue_chain: consumer got {count} items, expected {n}")
    return steady_rate(count, first, t_start, t_first, t_last, t_end)


def pickled_frames(n: int) -> Rate:
    """(c) 1080p uint8 frames pickled through the 3-process ``Queue`` chain.  Frames/s."""
    ctx = _ctx()
    q1, q2, results = ctx.Queue(IN_FLIGHT_FRAMES), ctx.Queue(IN_FLIGHT_FRAMES), ctx.Queue()
    barrier = ctx.Barrier(4)
    (count, first, t_first, t_last), t_start, t_end = _chain(
        ctx, (_frame_producer, (q1, barrier, n)), (_frame_consumer, (q2, barrier, results)), q1, q2, barrier, results
    )
    if count != n:
        raise RuntimeError(f"pickled_frames: consumer got {count} frames, expected {n}")
    return steady_rate(count, first, t_start, t_first, t_last, t_end)


def shm_frames(n: int) -> Rate:
    """(d) frames through shared-memory slots, one copy in and one out, 3 processes.  Frames/s."""
    from multiprocessing.shared_memory import SharedMemory

    import numpy as np

    ctx = _ctx()
    frame_bytes = int(np.prod(FRAME_SHAPE))
    shm = SharedMemory(create=True, size=IN_FLIGHT_FRAMES * frame_bytes)
    try:
        q_free, q1, q2, results = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue()
        for slot in range(IN_FLIGHT_FRAMES):
            q_free.put(slot)
        barrier = ctx.Barrier(4)
        (count, first, t_first, t_last), t_start, t_end = _chain(
            ctx,
            (_shm_producer, (shm.name, q_free, q1, barrier, n)),
            (_shm_consumer, (shm.name, q2, q_free, barrier, results)),
            q1,
            q2,
            barrier,
            results,
        )
    finally:
        shm.close()
        shm.unlink()
    if count != n:
        raise RuntimeError(f"shm_frames: consumer got {count} frames, expected {n}")
    return steady_rate(count, first, t_start, t_first, t_last, t_end)


def queue_chain_latency(rate: float = 500.0, seconds: float = 4.0) -> dict[str, float]:
    """The one-item chain paced at ``rate`` items/s for ``seconds``: end-to-end latency (ms)."""
    ctx = _ctx()
    n = max(1, round(rate * seconds))
    q1, q2, results = ctx.Queue(IN_FLIGHT_ITEMS), ctx.Queue(IN_FLIGHT_ITEMS), ctx.Queue()
    barrier = ctx.Barrier(4)
    latencies, _, _ = _chain(
        ctx, (_paced_producer, (q1, barrier, n, rate)), (_latency_consumer, (q2, barrier, results)), q1, q2, barrier,
        results,
    )
    return latency_summary(latencies)


# -- the Pool, for the speedup curve --------------------------------------------------------------------


def _pool_ready(barrier: Barrier) -> None:
    barrier.wait()


def _spin_item(i: int, loops: int) -> int:
    spin(loops)
    return i


def pool_map(n: int, workers: int, loops: int) -> Rate:
    """(e) ``Pool(workers).map`` of a ``loops``-iteration spin over ``n`` items (chunksize 1).  Items/s.

    ``startup_s`` is until every worker has started (they meet at a barrier in the
    initializer); the steady state is the ``map`` alone.
    """
    ctx = _ctx()
    barrier = ctx.Barrier(workers + 1)
    t_start = now_ns()
    with ctx.Pool(workers, initializer=_pool_ready, initargs=(barrier,)) as pool:
        barrier.wait(timeout=TIMEOUT_S)
        t_first = now_ns()
        done = pool.map(functools.partial(_spin_item, loops=loops), range(n), chunksize=1)
        t_last = now_ns()
        pool.close()
        pool.join()
    if len(done) != n:
        raise RuntimeError(f"pool_map: {len(done)} results, expected {n}")
    return steady_rate(n, 0, t_start, t_first, t_last, now_ns())


# -- memory of a bare interpreter ----------------------------------------------------------------------------


def idle_process_memory() -> dict[str, float]:
    """RSS, USS (MiB) and open fds of a bare Python interpreter (``python -c``) waiting on its stdin.

    The floor under any task process: a spawned task is such an interpreter plus
    ``multiprocessing``, the main module's imports and its own.
    """
    import subprocess
    import sys

    import psutil

    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.3)
        ps = psutil.Process(proc.pid)
        info = ps.memory_full_info()
        fds = ps.num_fds()
    finally:
        proc.communicate(timeout=10)
    return {"rss_mib": info.rss / 2**20, "uss_mib": info.uss / 2**20, "fds": fds}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few seconds")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    loops = calibrate_spin(0.004)

    def show(label: str, rate: Rate, unit: str) -> None:
        print(f"{label:<40} {rate.per_s:>12,.0f} {unit}/s   start-up {rate.startup_s:6.3f} s   ({rate.items} {unit})")

    show("mp.Queue chain, 1 int a put", queue_chain(int(200_000 * scale)), "items")
    show("mp.Queue chain, 256 ints a put", queue_chain(int(2_000_000 * scale), 256), "items")
    show("1080p frames pickled through mp.Queue", pickled_frames(max(10, int(150 * scale))), "frames")
    show("1080p frames through shared memory", shm_frames(max(20, int(1000 * scale))), "frames")
    for k in (1, 2):
        show(f"Pool({k}).map, ~4 ms spin an item", pool_map(max(20, int(500 * k * scale)), k, loops), "items")
    lat = queue_chain_latency(500, 4 * scale if args.quick else 4)
    print(f"{'mp.Queue chain latency at 500 items/s':<40} p50 {lat['p50_ms']:.3f} ms  p99 {lat['p99_ms']:.3f} ms  "
          f"max {lat['max_ms']:.3f} ms")
    mem = idle_process_memory()
    print(f"{'idle bare interpreter':<40} RSS {mem['rss_mib']:.1f} MiB  USS {mem['uss_mib']:.1f} MiB  "
          f"{mem['fds']:.0f} fds")


if __name__ == "__main__":
    main()
