"""The asyncflow side of the benchmark: each workload of issue 4 as a flow.

- ``tiny_items(n, per_item=False)``: ``IntProducer(0, n-1, 0) → IdentityProcessor →
  StampConsumer`` (a ``VoidConsumer`` that stamps its first item and the end of the
  stream).  These nodes have batch methods (``next_batch``, ``process_batch``,
  ``consume_batch``), which the engine calls once a block of rows; ``per_item=True``
  uses subclasses that keep only the per-item methods, so the node is called once
  an item, as a user's own node without batch methods would be.
- ``frames(n)``: a producer that emits one reused 1080p uint8 frame ``n`` times,
  changing a pixel each time, ``→ IdentityProcessor → FrameConsumer`` (reads a pixel).
- ``cpu_bound(n, nb_tasks, loops)``: ``IntProducer → SpinProcessor(nb_tasks) →
  StampConsumer``, the processor spinning ``loops`` iterations of pure Python (~4 ms).
- ``latency(rate, seconds)``: a producer paced at ``rate`` items/s, each item its
  ``time.monotonic_ns()`` at emission, ``→ IdentityProcessor → LatencyConsumer``
  (records now - stamp).
- ``memory()``: RSS / USS / fds of idle tasks (a producer that sleeps), read from
  the parent with psutil, for a 2-node flow and a 6-node chain; the difference over
  the 4 extra nodes is the cost of one more task and its channel.
  ``memory_isolated()`` runs it in a fresh interpreter (see there why).

Throughputs are ``Rate`` (``benchmarks._common``): steady state from the first
item's arrival at the consumer to the end of the stream there, start-up from the
call to ``asyncflow.run`` to that first arrival.  The consumer writes its stamps
to a file in ``close()``; stamps are ``time.monotonic_ns()``, which is
system-wide on Linux, so they compare across processes.

Node classes live at module top level: tasks are spawned, and a spawned process
finds a node's class by importing its module.

Run ``python -m benchmarks.workloads [--quick]`` to print them alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncflow
from asyncflow.consumers import VoidConsumer
from asyncflow.core import ConsumerNode, Flow, ProcessorNode, ProducerNode
from asyncflow.processors import IdentityProcessor
from asyncflow.producers import IntProducer

from ._common import (
    FRAME_SHAPE,
    Rate,
    calibrate_spin,
    last_line,
    latency_summary,
    now_ns,
    read_json,
    run_isolated,
    spin,
    steady_rate,
    write_json,
)

__all__ = [
    "AsyncPacedStampProducer",
    "FrameConsumer",
    "FrameProducer",
    "IdleProducer",
    "LatencyConsumer",
    "MarkConsumer",
    "PacedStampProducer",
    "SpinProcessor",
    "StampConsumer",
    "cpu_bound",
    "frames",
    "latency",
    "memory",
    "memory_isolated",
    "tiny_items",
]


# -- nodes ---------------------------------------------------------------------------------------------------


class StampConsumer(VoidConsumer):
    """A ``VoidConsumer`` that counts, stamps the first item and the end of the stream, and writes them at close()."""

    def __init__(self, out_path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.out_path = out_path
        self.count = 0
        self.t_first = 0

    def open(self) -> None:
        self.count = 0
        self.t_first = 0

    def consume(self, *inputs: Any) -> None:
        self.count += 1
        if self.count == 1:
            self.t_first = now_ns()

    def consume_batch(self, *columns: list[Any]) -> None:
        if not self.count:
            self.t_first = now_ns()
        self.count += len(columns[0])

    def close(self) -> None:
        write_json(self.out_path, {"count": self.count, "t_first": self.t_first, "t_last": now_ns()})


class ItemIntProducer(IntProducer):
    """``IntProducer`` without its batch method: ``next()`` is called once an item."""

    next = IntProducer.next  # defined here, below IntProducer.next_batch: the engine calls next()


class ItemIdentityProcessor(IdentityProcessor):
    """``IdentityProcessor`` called once an item."""

    process = IdentityProcessor.process


class ItemStampConsumer(StampConsumer):
    """``StampConsumer`` called once an item."""

    consume = StampConsumer.consume


class FrameConsumer(StampConsumer):
    """Reads one pixel of each frame (so the frame is really there), otherwise a ``StampConsumer``."""

    touched = 0

    def consume(self, *inputs: Any) -> None:
        self.touched += int(inputs[0][0, 0, 0])
        self.count += 1
        if self.count == 1:
            self.t_first = now_ns()


class FrameProducer(ProducerNode):
    """Emits one 1080p uint8 frame ``n`` times, reusing its buffer and changing one pixel each time.

    The engine must send (or copy) what ``next()`` returned before calling it again,
    as it would for a video reader that decodes into one buffer.
    """

    def __init__(self, n: int, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n
        self._i = 0
        self._frame: Any = None

    def open(self) -> None:
        import numpy as np

        self._frame = np.zeros(FRAME_SHAPE, np.uint8)
        self._i = 0

    def next(self) -> Any:
        i = self._i
        if i >= self.n:
            raise StopIteration
        self._frame[i % FRAME_SHAPE[0], 0, 0] = i & 255
        self._i = i + 1
        return self._frame

    def close(self) -> None:
        self._frame = None


class SpinProcessor(ProcessorNode):
    """Spins ``loops`` iterations of pure Python (holding the GIL) and passes the item on."""

    def __init__(self, loops: int, nb_tasks: int = 1, *, name: str | None = None) -> None:
        super().__init__(nb_tasks=nb_tasks, name=name)
        self.loops = loops

    def process(self, *inputs: Any) -> Any:
        spin(self.loops)
        return inputs[0]


class PacedStampProducer(ProducerNode):
    """Emits ``n`` items at ``rate`` items/s (on an absolute schedule), each its ``time.monotonic_ns()``.

    It sleeps with ``time.sleep`` between items, as a blocking camera read would.
    """

    def __init__(self, n: int, rate: float, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n
        self.rate = rate
        self._i = 0
        self._t0 = 0

    def open(self) -> None:
        self._i = 0
        self._t0 = 0

    def next(self) -> int:
        i = self._i
        if i >= self.n:
            raise StopIteration
        if i == 0:
            self._t0 = now_ns()
        else:
            delay = self._t0 + i * 1e9 / self.rate - now_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
        self._i = i + 1
        return now_ns()


class AsyncPacedStampProducer(PacedStampProducer):
    """``PacedStampProducer`` that waits with ``await asyncio.sleep`` (its task's event loop stays free)."""

    async def next(self) -> int:  # type: ignore[override]
        i = self._i
        if i >= self.n:
            raise StopAsyncIteration
        if i == 0:
            self._t0 = now_ns()
        else:
            delay = self._t0 + i * 1e9 / self.rate - now_ns()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
        self._i = i + 1
        return now_ns()


class LatencyConsumer(ConsumerNode):
    """Records now - stamp for each item; writes the list at close()."""

    def __init__(self, out_path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.out_path = out_path
        self._latencies: list[int] = []

    def open(self) -> None:
        self._latencies = []

    def consume(self, *inputs: Any) -> None:
        self._latencies.append(now_ns() - inputs[0])

    def close(self) -> None:
        write_json(self.out_path, self._latencies)


class IdleProducer(ProducerNode):
    """Emits ``0`` every ``interval`` seconds (sleeping asynchronously) until ``stop_path`` exists.

    ``max_seconds`` bounds its life in case nobody creates the file.
    """

    def __init__(self, stop_path: str, interval: float = 0.05, max_seconds: float = 120.0, *,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.stop_path = stop_path
        self.interval = interval
        self.max_seconds = max_seconds
        self._deadline = 0.0

    def open(self) -> None:
        self._deadline = time.monotonic() + self.max_seconds

    async def next(self) -> int:
        # a stat of a local file, once every ``interval``: not worth a thread
        if os.path.exists(self.stop_path) or time.monotonic() > self._deadline:  # noqa: ASYNC240
            raise StopAsyncIteration
        await asyncio.sleep(self.interval)
        return 0


class MarkConsumer(VoidConsumer):
    """Creates ``mark_path`` when the first item arrives (the whole flow is up)."""

    def __init__(self, mark_path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.mark_path = mark_path
        self._marked = False

    def open(self) -> None:
        self._marked = False

    def consume(self, *inputs: Any) -> None:
        if not self._marked:
            Path(self.mark_path).touch()
            self._marked = True


# -- running ---------------------------------------------------------------------------------------------------


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="asyncflow-bench-") as scratch:
        yield Path(scratch)


def _task_stats(flow: Flow) -> dict[str, dict[str, float]]:
    """The per-task figures the engine reports (whatever of them it has)."""
    found: dict[str, dict[str, float]] = {}
    for task, stats in flow.stats().items():
        found[task] = {
            key: getattr(stats, key) for key in ("processed", "busy_seconds", "wall_seconds") if hasattr(stats, key)
        }
    return found


def _run_stamped(build: Callable[[str], tuple[ProducerNode, ConsumerNode]], n: int,
                 options: Mapping[str, Any] | None) -> tuple[Rate, dict[str, Any]]:
    """Build a flow around a ``StampConsumer`` writing to a scratch file, run it, return its ``Rate``."""
    with _scratch() as scratch:
        out = str(scratch / "consumer.json")
        producer, consumer = build(out)
        flow = Flow([producer], [consumer], flow_options=dict(options or {}))
        t_start = now_ns()
        asyncflow.run(flow)
        t_end = now_ns()
        data = read_json(out)
    if data["count"] != n:
        raise RuntimeError(f"{flow!r}: the consumer got {data['count']} items, expected {n}")
    rate = steady_rate(n, 1, t_start, data["t_first"], data["t_last"], t_end)
    return rate, {"tasks": _task_stats(flow)}


def tiny_items(n: int, options: Mapping[str, Any] | None = None, *, per_item: bool = False) -> Rate:
    """``IntProducer(0, n-1, 0) → IdentityProcessor → StampConsumer``: items/s (see the module doc)."""

    def build(out: str) -> tuple[ProducerNode, ConsumerNode]:
        if per_item:
            a: IntProducer = ItemIntProducer(0, n - 1, 0)
            return a, ItemStampConsumer(out)(ItemIdentityProcessor()(a))
        a = IntProducer(0, n - 1, 0)
        b = IdentityProcessor()(a)
        return a, StampConsumer(out)(b)

    return _run_stamped(build, n, options)[0]


def frames(n: int, options: Mapping[str, Any] | None = None) -> Rate:
    """``FrameProducer(n) → IdentityProcessor → FrameConsumer``: 1080p frames/s."""

    def build(out: str) -> tuple[ProducerNode, ConsumerNode]:
        a = FrameProducer(n)
        b = IdentityProcessor()(a)
        return a, FrameConsumer(out)(b)

    return _run_stamped(build, n, options)[0]


def cpu_bound(n: int, nb_tasks: int, loops: int, options: Mapping[str, Any] | None = None) -> Rate:
    """``IntProducer → SpinProcessor(loops, nb_tasks) → StampConsumer``: items/s (start-up apart)."""

    def build(out: str) -> tuple[ProducerNode, ConsumerNode]:
        a = IntProducer(0, n - 1, 0)
        b = SpinProcessor(loops, nb_tasks=nb_tasks)(a)
        return a, StampConsumer(out)(b)

    return _run_stamped(build, n, options)[0]


def latency(
    rate: float = 500.0, seconds: float = 4.0, blocking: bool = True, options: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """End-to-end latency (ms) of ``PacedStampProducer(rate) → IdentityProcessor → LatencyConsumer``.

    ``blocking``: the producer waits in ``time.sleep`` (as ``IntProducer(fps=...)`` and
    blocking camera reads do); otherwise in ``await asyncio.sleep``.
    """
    n = max(1, round(rate * seconds))
    with _scratch() as scratch:
        out = str(scratch / "latencies.json")
        a = PacedStampProducer(n, rate) if blocking else AsyncPacedStampProducer(n, rate)
        b = IdentityProcessor()(a)
        c = LatencyConsumer(out)(b)
        asyncflow.run(Flow([a], [c], flow_options=dict(options or {})))
        latencies: list[int] = read_json(out)
    if len(latencies) != n:
        raise RuntimeError(f"latency: the consumer got {len(latencies)} items, expected {n}")
    return latency_summary(latencies)


# -- memory ----------------------------------------------------------------------------------------------------


def _task_processes() -> list[Any]:
    """This process's spawned children (the tasks), not the resource tracker."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            found.append(child)
    return found


def _snapshot() -> dict[str, Any]:
    import psutil

    tasks = []
    for proc in _task_processes():
        try:
            info = proc.memory_full_info()
            tasks.append({"pid": proc.pid, "rss_mib": info.rss / 2**20, "uss_mib": info.uss / 2**20,
                          "fds": proc.num_fds(), "threads": proc.num_threads()})
        except psutil.Error:
            continue
    me = psutil.Process()
    return {
        "tasks": tasks,
        "parent": {"rss_mib": me.memory_info().rss / 2**20, "fds": me.num_fds(), "threads": me.num_threads()},
    }


def _idle_flow_snapshot(middle: int, settle: float, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Run ``IdleProducer → middle x IdentityProcessor → MarkConsumer``; snapshot it once it is up and idle."""
    import psutil
    import uvloop

    with _scratch() as scratch:
        mark, stop = scratch / "up", scratch / "stop"
        node: Any = IdleProducer(str(stop))
        producer = node
        for _ in range(middle):
            node = IdentityProcessor()(node)
        consumer = MarkConsumer(str(mark))(node)
        flow = Flow([producer], [consumer], flow_options=dict(options or {}))
        parent_fds_before = psutil.Process().num_fds()

        async def measure() -> dict[str, Any]:
            run = asyncio.ensure_future(flow.run())
            try:
                deadline = time.monotonic() + 120
                while not mark.exists():
                    if run.done():
                        run.result()
                        raise RuntimeError("the idle flow ended before it was up")
                    if time.monotonic() > deadline:
                        raise TimeoutError("the idle flow did not come up within 120 s")
                    await asyncio.sleep(0.02)
                await asyncio.sleep(settle)
                return _snapshot()
            finally:
                stop.touch()
                await run

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            snap = runner.run(measure())
    tasks = snap["tasks"]
    if len(tasks) != middle + 2:
        raise RuntimeError(f"memory: found {len(tasks)} task processes, expected {middle + 2}")
    snap["nodes"] = middle + 2
    snap["total"] = {key: sum(t[key] for t in tasks) for key in ("rss_mib", "uss_mib", "fds")}
    snap["parent"]["fds_added"] = snap["parent"]["fds"] - parent_fds_before
    return snap


def memory(settle: float = 0.5, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """RSS / USS / fds of idle tasks, and what each node (a task and its channel) adds.

    ``idle_task``: the mean over the tasks of a 2-node flow (producer → consumer).
    ``per_node``: (6-node chain - 2-node flow) / 4, task processes and parent together.
    """
    small = _idle_flow_snapshot(0, settle, options)
    chain = _idle_flow_snapshot(4, settle, options)
    tasks = small["tasks"]
    idle_task = {key: sum(t[key] for t in tasks) / len(tasks) for key in ("rss_mib", "uss_mib", "fds", "threads")}
    extra = chain["nodes"] - small["nodes"]
    per_node = {key: (chain["total"][key] - small["total"][key]) / extra for key in ("rss_mib", "uss_mib", "fds")}
    per_node["parent_fds"] = (chain["parent"]["fds_added"] - small["parent"]["fds_added"]) / extra
    return {"idle_task": idle_task, "per_node": per_node, "flow_2_nodes": small, "flow_6_nodes": chain}


def memory_isolated(settle: float = 0.5, timeout: float = 300.0) -> dict[str, Any]:
    """``memory()`` run in a fresh interpreter (``python -m benchmarks.workloads --memory-json``).

    A spawned task imports its parent's main module: measured from inside
    ``benchmarks.run_all``, each task would also carry the benchmark's own imports.
    From this module as main, a task carries what a user's script would: asyncflow.
    """
    with _scratch() as scratch:
        out = scratch / "memory.json"
        args = [sys.executable, "-m", "benchmarks.workloads", "--memory-json", str(out), "--settle", str(settle)]
        code, _, stderr = run_isolated(args, timeout)
        if code != 0 or not out.exists():
            raise RuntimeError(f"memory child exited with {code}: {last_line(stderr)}")
        data: dict[str, Any] = read_json(out)
    return data


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few seconds")
    parser.add_argument("--memory-json", metavar="PATH", help="only measure memory(), write it to PATH as JSON")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds idle before memory is read")
    args = parser.parse_args(argv)
    if args.memory_json:
        write_json(args.memory_json, memory(args.settle))
        return
    scale = 0.1 if args.quick else 1.0
    loops = calibrate_spin(0.004)

    def show(label: str, rate: Rate, unit: str) -> None:
        print(f"{label:<40} {rate.per_s:>12,.0f} {unit}/s   start-up {rate.startup_s:6.3f} s   ({rate.items} {unit})")

    show("tiny items", tiny_items(int(2_000_000 * scale)), "items")
    show("1080p frames", frames(max(20, int(1000 * scale))), "frames")
    for k in (1, 2):
        show(f"~4 ms spin, nb_tasks={k}", cpu_bound(max(20, int(500 * k * scale)), k, loops), "items")
    for blocking in (True, False):
        lat = latency(500, 1 if args.quick else 4, blocking)
        label = f"latency at 500 items/s ({'time.sleep' if blocking else 'asyncio.sleep'})"
        print(f"{label:<40} p50 {lat['p50_ms']:.3f} ms  p99 {lat['p99_ms']:.3f} ms  max {lat['max_ms']:.3f} ms")
    mem = memory_isolated(args.settle)
    idle, per = mem["idle_task"], mem["per_node"]
    print(f"{'idle task':<40} RSS {idle['rss_mib']:.1f} MiB  USS {idle['uss_mib']:.1f} MiB  {idle['fds']:.0f} fds")
    print(f"{'each more node (task + channel)':<40} RSS {per['rss_mib']:.1f} MiB  USS {per['uss_mib']:.1f} MiB  "
          f"{per['fds']:.1f} fds (+{per['parent_fds']:.1f} in the parent)")


if __name__ == "__main__":
    main()
