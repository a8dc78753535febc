"""Nodes for the tests of the block hot path (tests/engine/test_blocks.py)."""

from __future__ import annotations

import enum
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode


class Color(enum.Enum):
    RED = 1
    BLUE = 2


def mixed_value(i: int) -> Any:
    """Item ``i`` of a stream that cycles through immutable and mutable kinds."""
    kinds: list[Callable[[], Any]] = [
        lambda: i,
        lambda: f"s{i}",
        lambda: (i, f"t{i}"),
        lambda: [i, i + 1],
        lambda: {"i": i},
        lambda: Color.RED if i % 2 else Color.BLUE,
        lambda: None,
        lambda: i / 2,
        lambda: bytes([i % 256]) * 3,
        lambda: ((i,), [i]),  # a tuple holding something mutable
        lambda: True,
    ]
    return kinds[i % len(kinds)]()


class MixedProducer(ProducerNode):
    """Emits ``mixed_value(0) .. mixed_value(n - 1)``."""

    def __init__(self, n: int, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n

    def open(self) -> None:
        self.i = 0

    def next(self) -> Any:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return mixed_value(self.i - 1)


class ListProducer(ProducerNode):
    """Emits ``[i]`` for i in 0 .. n-1: every row holds a mutable value."""

    def __init__(self, n: int, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n

    def open(self) -> None:
        self.i = 0

    def next(self) -> list[int]:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return [self.i - 1]


class First(ProcessorNode):
    """``x[0]``."""

    def process(self, x: list[int]) -> int:
        return x[0]


class ReuseEvery(ProcessorNode):
    """Returns its own list ``[x]`` for multiples of ``k`` (mutated again later), ``x`` otherwise."""

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = k

    def open(self) -> None:
        self.buf = [0]

    def process(self, x: int) -> Any:
        if x % self.k == 0:
            self.buf[0] = x
            return self.buf
        self.buf[0] = -1
        return x


class FailEvery(ProcessorNode):
    """Raises ValueError on multiples of ``k``."""

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = k

    def process(self, x: int) -> int:
        if x % self.k == 0:
            raise ValueError(f"{x} is a multiple of {self.k}")
        return x


class ReturnsCoroutine(ProcessorNode):
    """A plain ``process`` that returns a coroutine: the task awaits it."""

    async def _double(self, x: int) -> int:
        return 2 * x

    def process(self, x: int) -> Any:
        return self._double(x)


class StampProducer(ProducerNode):
    """Sleeps ``delay``, then emits ``time.monotonic()``; ``n`` items."""

    def __init__(self, n: int, delay: float, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n
        self.delay = delay

    def open(self) -> None:
        self.i = 0

    def next(self) -> float:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        time.sleep(self.delay)
        return time.monotonic()


class PickleRecorder(ConsumerNode):
    """Keeps every item (a tuple when several parents) and pickles the list to ``path`` at close."""

    def __init__(self, path: str | Path, *, latency: bool = False, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = str(path)
        self.latency = latency

    def open(self) -> None:
        self.items: list[Any] = []

    def consume(self, *items: Any) -> None:
        item: Any = items[0] if len(items) == 1 else items
        self.items.append(time.monotonic() - item if self.latency else item)

    def close(self) -> None:
        with open(self.path, "wb") as f:
            pickle.dump(self.items, f)


def kept(path: str | Path) -> list[Any]:
    with open(path, "rb") as f:
        items: list[Any] = pickle.load(f)
    return items


class ReuseInTuple(ProcessorNode):
    """Returns ``(x, "odd")`` for odd x, else ``(x, buf)`` with its own list ``buf == [x]``, mutated later."""

    def open(self) -> None:
        self.buf = [0]

    def process(self, x: int) -> tuple[int, Any]:
        self.buf[0] = x
        return (x, "odd") if x % 2 else (x, self.buf)
