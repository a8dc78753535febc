"""Nodes for live-stream tests (REALTIME, branches): stamped items, paced sources, timed sinks."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode
from asyncflow.engine.spec import charged_drops as spec_charged_drops


class PacedSource(ProducerNode):
    """A camera stand-in: item ``i`` is ``(i, emitted_at)``, due at ``t0 + i / fps``; never waits for anyone.

    Late, it emits at once (it does not skip: the tests count every index); it
    writes each item's lateness against its schedule to ``log`` at close, if given.
    """

    def __init__(self, n: int, fps: float, log: str | None = None, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n
        self.fps = fps
        self.log = log

    def open(self) -> None:
        self.i = 0
        self.t0 = 0.0
        self.late: list[float] = []

    def next(self) -> tuple[int, float]:
        if self.i >= self.n:
            raise StopIteration
        now = time.time()
        if self.i == 0:
            self.t0 = now
        due = self.t0 + self.i / self.fps
        if now < due:
            time.sleep(due - now)
        now = time.time()
        self.late.append(now - due)
        self.i += 1
        return (self.i - 1, now)

    def close(self) -> None:
        if self.log is not None:
            Path(self.log).write_text(json.dumps(self.late))


class Work(ProcessorNode):
    """Passes its input on after ``seconds`` of work (plus up to ``jitter`` more, at random)."""

    def __init__(self, seconds: float, jitter: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds
        self.jitter = jitter

    def process(self, item: Any) -> Any:
        time.sleep(self.seconds + random.random() * self.jitter)
        return item


class Mutate(ProcessorNode):
    """Changes its input in place (a list: every value set to -1) and returns it."""

    def process(self, item: list[int]) -> list[int]:
        for k in range(len(item)):
            item[k] = -1
        return item


class Lists(ProducerNode):
    """Emits ``[i, i, i, i]`` for i in 0 .. n-1 (a fresh list each time)."""

    def __init__(self, n: int, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n

    def open(self) -> None:
        self.i = 0

    def next(self) -> list[int]:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return [self.i - 1] * 4


class Stamps(ConsumerNode):
    """Records each item with the time it arrived (``[item, time.time()]``), written to ``path`` at close.

    Sleeps ``seconds`` per item after recording it (a slow sink).
    """

    def __init__(self, path: str, seconds: float = 0.0, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = path
        self.seconds = seconds

    def open(self) -> None:
        self.got: list[Any] = []

    def consume(self, item: Any) -> None:
        self.got.append([item, time.time()])
        if self.seconds:
            time.sleep(self.seconds)

    def close(self) -> None:
        Path(self.path).write_text(json.dumps(self.got))


def stamps(path: str | Path) -> list[list[Any]]:
    """What a ``Stamps`` consumer recorded: ``[item, arrived_at]`` pairs."""
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else []


def charged_drops(flow: Any) -> dict[str, dict[str, int]]:
    """Drops charged to each node (``{node: {cause: n}}``), summed over every task's stats of ``flow``."""
    return spec_charged_drops(flow.stats().values())
