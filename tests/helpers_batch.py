"""Nodes with batch methods (tests/engine/test_batch_methods.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode
from asyncflow.processors import IdentityProcessor
from tests.helpers_blocks import FailEvery


class PlusOne(IdentityProcessor):
    """Overrides only ``process`` of a node that has ``process_batch``: ``process`` must run."""

    def process(self, *inputs: Any) -> Any:
        return inputs[0] + 1


class BatchOnly(ProcessorNode):
    """Defines ``process_batch`` only: sums its parents' items row by row, records the batch sizes."""

    def process_batch(self, *columns: list[int]) -> list[int]:
        return [sum(row) for row in zip(*columns, strict=True)]


class AsyncBatchDouble(ProcessorNode):
    async def process_batch(self, xs: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return [2 * x for x in xs]

    def process(self, x: int) -> int:
        return 2 * x


class BatchFailsOnMultiples(FailEvery):
    """``FailEvery`` with a ``process_batch``: the whole batch fails when it holds a multiple of ``k``."""

    def process_batch(self, xs: list[int]) -> list[int]:
        return [self.process(x) for x in xs]


class WrongLength(ProcessorNode):
    def process_batch(self, xs: list[int]) -> list[int]:
        return xs[:-1]


class RangeBatches(ProducerNode):
    """Emits 0 .. n-1 through ``next_batch`` only, at most ``chunk`` at a time."""

    def __init__(self, n: int, chunk: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = n
        self.chunk = chunk

    def open(self) -> None:
        self.i = 0

    def next_batch(self, max_items: int) -> list[int]:
        if self.i >= self.n:
            raise StopIteration
        stop = min(self.n, self.i + min(max_items, self.chunk))
        items = list(range(self.i, stop))
        self.i = stop
        return items


class TooMany(ProducerNode):
    def next_batch(self, max_items: int) -> list[int]:
        return list(range(max_items + 1))


class CollectBatches(ConsumerNode):
    """Keeps items given through ``consume_batch`` (a tuple a row with several parents) and writes them at close."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path

    def open(self) -> None:
        self.items: list[Any] = []

    def consume_batch(self, *columns: list[Any]) -> None:
        self.items.extend(columns[0] if len(columns) == 1 else zip(*columns, strict=True))

    def close(self) -> None:
        import pickle

        with open(self.path, "wb") as f:
            pickle.dump(self.items, f)


class UnpicklableBatch(ProcessorNode):
    """``process_batch`` returns locks, which cannot be pickled."""

    def process(self, x: int) -> Any:
        import threading

        return threading.Lock()

    def process_batch(self, xs: list[int]) -> list[Any]:
        return [self.process(x) for x in xs]


class MutatesPrevious(ProcessorNode):
    """Returns ``len(x)``, and appends -1 to the input it got the call before (which it keeps)."""

    def open(self) -> None:
        self.previous: list[int] | None = None

    def process(self, x: list[int]) -> int:
        if self.previous is not None:
            self.previous.append(-1)
        self.previous = x
        return len(x)


class ReusedListProducer(ProducerNode):
    """Emits 0 .. n-1 through ``next_batch``, always in the same list object, refilled on each call."""

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = n

    def open(self) -> None:
        self.i = 0
        self.buffer: list[int] = []

    def next_batch(self, max_items: int) -> list[int]:
        if self.i >= self.n:
            raise StopIteration
        stop = min(self.n, self.i + max_items)
        self.buffer[:] = range(self.i, stop)
        self.i = stop
        return self.buffer


class ReusingDoubler(ProcessorNode):
    """Doubles its items into one reused output list, and empties the input list it was given."""

    def open(self) -> None:
        self.out: list[int] = []

    def process_batch(self, xs: list[int]) -> list[int]:
        self.out[:] = [2 * x for x in xs]
        xs.clear()
        return self.out


class ScramblesThenFails(FailEvery):
    """``FailEvery`` whose ``process_batch`` reverses its input list in place before it fails."""

    def process_batch(self, xs: list[int]) -> list[int]:
        xs.reverse()
        if any(x % self.k == 0 for x in xs):
            xs[:] = [1] * len(xs)
            raise ValueError("a multiple in the batch")
        xs.reverse()
        return [self.process(x) for x in xs]


class ListsAndClears(ProcessorNode):
    """Returns a new list per item (a mutable value: its row is frozen), then empties its input list."""

    def process_batch(self, xs: list[int]) -> list[list[int]]:
        out = [[x] for x in xs]
        xs.clear()
        return out
