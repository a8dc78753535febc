"""Nodes that raise a chosen exception type in a chosen method (BaseExceptions included)."""

from __future__ import annotations

import builtins
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode


def _raise(kind: str) -> None:
    raise getattr(builtins, kind)(f"raised {kind} on purpose")


class RaisingProducer(ProducerNode):
    """Emits 0, 1, 2, ... and raises ``kind`` in ``where`` (``open`` / ``next`` / ``close``), at item 3 for next."""

    def __init__(self, kind: str, where: str, *, asynchronous: bool = False, name: str | None = None) -> None:
        super().__init__(name=name)
        self.kind = kind
        self.where = where
        self.asynchronous = asynchronous

    def open(self) -> None:
        self.i = 0
        if self.where == "open":
            _raise(self.kind)

    def _next(self) -> int:
        if self.i >= 20:
            raise StopIteration
        if self.where == "next" and self.i == 3:
            _raise(self.kind)
        self.i += 1
        return self.i - 1

    def next(self) -> Any:
        if self.asynchronous:
            return self._anext()
        return self._next()

    async def _anext(self) -> int:
        try:
            return self._next()
        except StopIteration:
            raise StopAsyncIteration from None

    def close(self) -> None:
        if self.where == "close":
            _raise(self.kind)


class RaisingProcessor(ProcessorNode):
    """Identity that raises ``kind`` in ``where`` (``open`` / ``process`` / ``close``), at item 3 for process."""

    def __init__(self, kind: str, where: str, *, asynchronous: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.where = where
        self.asynchronous = asynchronous

    def open(self) -> None:
        if self.where == "open":
            _raise(self.kind)

    def process(self, x: int) -> Any:
        if self.asynchronous:
            return self._aprocess(x)
        if self.where == "process" and x == 3:
            _raise(self.kind)
        return x

    async def _aprocess(self, x: int) -> int:
        if self.where == "process" and x == 3:
            _raise(self.kind)
        return x

    def close(self) -> None:
        if self.where == "close":
            _raise(self.kind)


class RaisingConsumer(ConsumerNode):
    """Raises ``kind`` on item 3 in consume()."""

    def __init__(self, kind: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.kind = kind

    def consume(self, x: int) -> None:
        if x == 3:
            _raise(self.kind)
