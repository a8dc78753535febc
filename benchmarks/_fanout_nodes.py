"""The nodes of ``benchmarks.fanout`` (top level of an importable module: spawned tasks import it to unpickle them).

Each node writes what it saw to the JSON file named in its constructor at ``close()``
(it runs in a process of its own).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from asyncflow.core import ConsumerNode, ProducerNode

__all__ = ["FastConsumer", "PacedSource", "SlowConsumer", "write_json"]


def write_json(path: str, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (the parent never reads half a file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


class PacedSource(ProducerNode):
    """``items`` items ``(index, emitted_at)`` at ``rate`` a second on a fixed schedule.

    Item ``i`` is due at ``t0 + i / rate`` (``t0``: the first ``next()``); the source
    sleeps until it is due and, when it is already late (held back by backpressure),
    emits at once without skipping an item or shifting the schedule.  ``emitted_at``
    is ``time.time()`` at emission (wall clock: comparable across processes).  Records
    each item's lateness (emission - due, monotonic clock) and emission time.
    """

    def __init__(self, items: int, rate: float, out_path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.items = items
        self.rate = rate
        self.out_path = out_path

    def open(self) -> None:
        self._i = 0
        self._t0 = 0.0
        self._late: list[float] = []
        self._emitted_at: list[float] = []

    def next(self) -> tuple[int, float]:
        i = self._i
        if i >= self.items:
            raise StopIteration
        if i == 0:
            self._t0 = time.monotonic()
        due = self._t0 + i / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._late.append(time.monotonic() - due)
        emitted_at = time.time()
        self._emitted_at.append(emitted_at)
        self._i = i + 1
        return i, emitted_at

    def close(self) -> None:
        write_json(self.out_path, {"emitted": self._i, "lateness_s": self._late, "emitted_at": self._emitted_at})


class _RecordingConsumer(ConsumerNode):
    """Records ``(index, emitted_at, arrival)`` for each item (arrival: ``time.time()`` at the start of consume)."""

    work_s = 0.0

    def __init__(self, out_path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.out_path = out_path

    def open(self) -> None:
        self._records: list[tuple[int, float, float]] = []

    def consume(self, *inputs: Any) -> None:
        arrival = time.time()
        index, emitted_at = inputs[0]
        self._records.append((index, emitted_at, arrival))
        if self.work_s:
            time.sleep(self.work_s)

    def close(self) -> None:
        write_json(self.out_path, {"records": self._records, "work_s": self.work_s})


class FastConsumer(_RecordingConsumer):
    """The fast branch: records each item, no work."""


class SlowConsumer(_RecordingConsumer):
    """The slow branch: records each item, then works ``work_s`` (a blocking sleep) on it."""

    def __init__(self, out_path: str, work_s: float, *, name: str | None = None) -> None:
        super().__init__(out_path, name=name)
        self.work_s = work_s
