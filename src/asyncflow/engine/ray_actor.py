"""What runs inside a Ray actor: one task's node, applied to whole batches of rows.

The Ray engine's counterpart of ``task.py``: ``produce`` pulls a batch from a
producer (zipped onto the rows of the producers before it), ``process`` runs a
processor or consumer over a batch and returns the rows the next stage reads.
Rows and ``ABSENT`` follow the same model as the local engine (``core.graph``).
A node's exception leaves the actor as ``NodeFailure``, which names the task and
carries the traceback text (Ray wraps it in ``RayTaskError``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import time
from collections import deque
from collections.abc import Callable
from types import CoroutineType
from typing import Any

from ..core.graph import ABSENT, Stage
from ..core.node import ConsumerNode, ProcessorNode, ProducerNode
from .spec import TaskFailure, TaskStats, describe_failure
from .task import compile_build
from .wire import immutable_size

__all__ = ["NodeFailure", "TaskRunnerActor"]

log = logging.getLogger("asyncflow.ray")

_PRODUCE_BUDGET = 0.05  # seconds a produce() call may spend filling one batch


class Pickled:
    """A row fixed when its node returned it (it held something mutable, e.g. a reused frame)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        return (Pickled, (self.data,))


def _fix(row: tuple[Any, ...]) -> Any:
    """The row itself if nothing in it can change, else its pickle: DESIGN §2's "an item is
    fixed when next() or process() returns it" (a batch is serialized only after the call)."""
    return row if immutable_size(row) >= 0 else Pickled(pickle.dumps(row, 5))


def _unfix(row: Any) -> tuple[Any, ...]:
    return pickle.loads(row.data) if type(row) is Pickled else row  # type: ignore[no-any-return]


class NodeFailure(Exception):
    """A node raised inside its actor; ``failure`` says where and carries the traceback."""

    def __init__(self, failure: TaskFailure) -> None:
        super().__init__(f"{failure.node_type} {failure.node!r} (task {failure.task}) failed in "
                         f"{failure.phase}(): {failure.summary}")
        self.failure = failure

    def __reduce__(self) -> tuple[Any, ...]:
        return (NodeFailure, (self.failure,))


class TaskRunnerActor:
    """One task of the flow (wrapped with ``ray.remote`` by the scheduler)."""

    def __init__(self, stage: Stage, task: str, device: str | None) -> None:
        if device is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = device
        self.stage = stage
        self.node = stage.node
        self.task = task
        self.build = compile_build(stage.out_sources)
        self.blank = (ABSENT,) * len(stage.in_layout)
        self.stats = TaskStats()
        self.samples: deque[float] = deque(maxlen=256)
        self.loop = asyncio.new_event_loop()
        self.opened = False
        self.ended = False
        self.started = time.perf_counter()

    # -- helpers --------------------------------------------------------------
    def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        value = method(*args)
        if type(value) is CoroutineType:
            value = self.loop.run_until_complete(value)
        return value

    def _fail(self, phase: str, exc: BaseException) -> NodeFailure:
        return NodeFailure(describe_failure(exc, task=self.task, node=self.node, phase=phase))

    # -- lifecycle --------------------------------------------------------------
    def open(self) -> bool:
        try:
            self._call(self.node.open)
        except Exception as exc:
            raise self._fail("open", exc) from None
        self.opened = True
        self.started = time.perf_counter()
        return True

    def close(self) -> TaskStats:
        """Close the node (if it opened) and return the task's final stats."""
        if self.opened:
            self.opened = False
            try:
                self._call(self.node.close)
            except Exception as exc:
                raise self._fail("close", exc) from None
        return self.snapshot(finished=True)

    def snapshot(self, finished: bool = False) -> TaskStats:
        stats = TaskStats(**{k: v for k, v in vars(self.stats).items() if k != "samples"})
        stats.wall_seconds = time.perf_counter() - self.started
        stats.samples = list(self.samples)
        stats.finished = finished
        return stats

    def pid(self) -> int:
        return os.getpid()

    # -- streaming --------------------------------------------------------------
    def produce(
        self, upstream: list[tuple[Any, ...]] | None, limit: int
    ) -> tuple[list[tuple[Any, ...]], tuple[int, bool]]:
        """Next batch: own items zipped onto ``upstream`` rows (or alone); returns (rows, (count, ended))."""
        node = self.node
        assert isinstance(node, ProducerNode)
        rows: list[tuple[Any, ...]] = []
        started = time.perf_counter()
        inputs = upstream if upstream is not None else None
        count = len(inputs) if inputs is not None else limit
        for i in range(count):
            value: Any = ABSENT
            if not self.ended:
                t0 = time.perf_counter()
                try:
                    value = self._call(node.next)
                    self.stats.processed += 1
                    self.samples.append(time.perf_counter() - t0)
                except (StopIteration, StopAsyncIteration):
                    self.ended = True
                except RuntimeError as exc:
                    if not isinstance(exc.__cause__, (StopIteration, StopAsyncIteration)):
                        raise self._fail("next", exc) from None
                    self.ended = True
                except Exception as exc:
                    raise self._fail("next", exc) from None
            if inputs is None and value is ABSENT:
                break
            rows.append(_fix(self.build(self.blank if inputs is None else _unfix(inputs[i]), value)))
            if inputs is None and time.perf_counter() - started >= _PRODUCE_BUDGET:
                break  # a paced source: hand over what is there
        self.stats.busy_seconds += time.perf_counter() - started
        self.stats.sent += len(rows)
        return rows, (len(rows), self.ended)

    def process(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Run the node on every row whose inputs are all present; return the next stage's rows."""
        node = self.node
        method: Callable[..., Any]
        if isinstance(node, ProcessorNode):
            method, phase = node.process, "process"
        else:
            assert isinstance(node, ConsumerNode)
            method, phase = node.consume, "consume"
        slots = self.stage.parent_slots
        out: list[tuple[Any, ...]] = []
        started = time.perf_counter()
        for fixed in rows:
            row = _unfix(fixed)
            inputs = [row[s] for s in slots]
            value: Any = ABSENT
            if not any(v is ABSENT for v in inputs):
                t0 = time.perf_counter()
                try:
                    value = self._call(method, *inputs)
                    self.stats.processed += 1
                except Exception as exc:
                    value = ABSENT
                    if node.on_error != "skip":
                        raise self._fail(phase, exc) from None
                    self.stats.skipped += 1
                self.samples.append(time.perf_counter() - t0)
            out.append(_fix(self.build(row, value)))
        self.stats.received += len(rows)
        self.stats.sent += len(out)
        self.stats.busy_seconds += time.perf_counter() - started
        return out
