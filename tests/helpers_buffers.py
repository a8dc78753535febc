"""Producers of mutable and large buffers (module level for spawn)."""

from __future__ import annotations

import hashlib

from asyncflow.core import ProcessorNode, ProducerNode


class ReusedBufferProducer(ProducerNode):
    """Returns the same list object every time, mutated in place (as video readers do)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def open(self) -> None:
        self.i = 0
        self.buf = [0, 0, 0, 0]

    def next(self) -> list[int]:
        if self.i >= self.n:
            raise StopIteration
        for k in range(4):
            self.buf[k] = self.i
        self.i += 1
        return self.buf


class BigBytesProducer(ProducerNode):
    """Emits ``n`` bytearrays of ``size`` bytes, each filled from its index."""

    def __init__(self, n: int, size: int) -> None:
        super().__init__()
        self.n = n
        self.size = size

    def open(self) -> None:
        self.i = 0

    @staticmethod
    def make(i: int, size: int) -> bytes:
        block = hashlib.sha256(str(i).encode()).digest()
        return (block * (size // len(block) + 1))[:size]

    @staticmethod
    def expected(i: int, size: int) -> str:
        return hashlib.sha256(BigBytesProducer.make(i, size)).hexdigest()

    def next(self) -> bytes:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.make(self.i - 1, self.size)


class Checksum(ProcessorNode):
    """sha256 hex digest of a bytes-like item."""

    def process(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()
