"""Nodes shared by the tests: at module level, so spawned children can unpickle them."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode


class CountProducer(ProducerNode):
    """Emits 0 .. n-1 (forever when n is None), sleeping ``delay`` before each item."""

    def __init__(self, n: int | None, delay: float = 0.0, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n
        self.delay = delay

    def open(self) -> None:
        self.i = 0

    def next(self) -> int:
        if self.n is not None and self.i >= self.n:
            raise StopIteration
        if self.delay:
            time.sleep(self.delay)
        self.i += 1
        return self.i - 1


class AsyncCountProducer(ProducerNode):
    """Like CountProducer, with async methods; ends with StopAsyncIteration."""

    def __init__(self, n: int, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n

    async def open(self) -> None:
        await asyncio.sleep(0)
        self.i = 0

    async def next(self) -> int:
        await asyncio.sleep(0)
        if self.i >= self.n:
            raise StopAsyncIteration
        self.i += 1
        return self.i - 1


class Add(ProcessorNode):
    """Adds a constant."""

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = k

    def process(self, x: int) -> int:
        return x + self.k


class AsyncMul(ProcessorNode):
    """Multiplies, asynchronously."""

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = k

    async def process(self, x: int) -> int:
        await asyncio.sleep(0)
        return x * self.k


class Pair(ProcessorNode):
    """Returns its inputs as a tuple."""

    def process(self, *xs: Any) -> tuple[Any, ...]:
        return xs


class Jitter(ProcessorNode):
    """Identity that sleeps a varying, deterministic time (exposes ordering bugs)."""

    def process(self, x: int) -> int:
        time.sleep(((x * 7919) % 5) / 2000)
        return x


class Sleepy(ProcessorNode):
    """Identity that sleeps ``delay`` per item."""

    def __init__(self, delay: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def process(self, x: Any) -> Any:
        time.sleep(self.delay)
        return x


class FailAt(ProcessorNode):
    """Raises ValueError on item ``at`` (on every item when at is None)."""

    def __init__(self, at: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.at = at

    def process(self, x: int) -> int:
        if self.at is None or x == self.at:
            raise ValueError(f"boom at {x}")
        return x


class Recorder(ConsumerNode):
    """Writes every item it consumes, as JSON lines, to ``path``; records open/close."""

    def __init__(self, path: str | os.PathLike[str], *, delay: float = 0.0, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = str(path)
        self.delay = delay

    def open(self) -> None:
        self.file = open(self.path, "a")  # noqa: SIM115 - closed in close()
        self.file.write(json.dumps({"event": "open"}) + "\n")
        self.file.flush()

    def consume(self, *items: Any) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.file.write(json.dumps({"item": items[0] if len(items) == 1 else list(items)}) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.write(json.dumps({"event": "close"}) + "\n")
        self.file.close()


def recorded(path: str | os.PathLike[str]) -> list[Any]:
    """The items a Recorder wrote."""
    p = Path(path)
    if not p.exists():
        return []
    lines = [json.loads(line) for line in p.read_text().splitlines() if line]
    return [line["item"] for line in lines if "item" in line]


def events(path: str | os.PathLike[str]) -> list[str]:
    """The open/close events a Recorder wrote."""
    p = Path(path)
    lines = [json.loads(line) for line in p.read_text().splitlines() if line] if p.exists() else []
    return [line["event"] for line in lines if "event" in line]


class PidFile(ProcessorNode):
    """Identity that writes its pid to ``path`` in open() (for tests that kill workers)."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path

    def open(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()}\n")

    def process(self, x: Any) -> Any:
        time.sleep(0.01)
        return x


class BumpN(ProcessorNode):
    """Increments ``item["n"]`` in place and returns the item."""

    def process(self, item: dict[str, int]) -> dict[str, int]:
        item["n"] += 1
        return item


class SizedCountProducer(CountProducer):
    """A CountProducer that knows its length: ``len_hint`` (for progress bars) is ``n``."""

    @property
    def len_hint(self) -> int | None:
        return self.n
