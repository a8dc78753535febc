"""Nodes that move numpy frames (module level for spawn)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode


class FrameProducer(ProducerNode):
    """Emits ``n`` frames of ``shape``, reusing ONE buffer it mutates in place each time."""

    def __init__(self, n: int, shape: tuple[int, ...] = (360, 640, 3)) -> None:
        super().__init__()
        self.n = n
        self.shape = shape

    def open(self) -> None:
        self.i = 0
        self.buf = np.zeros(self.shape, dtype=np.uint8)

    def next(self) -> dict[str, Any]:
        if self.i >= self.n:
            raise StopIteration
        self.buf[...] = self.i % 251
        self.buf[0, 0, 0] = 7
        self.i += 1
        return {"index": self.i - 1, "frame": self.buf}


class Brighten(ProcessorNode):
    """Adds 1 to every pixel, in place (the node owns the array it received)."""

    def process(self, item: dict[str, Any]) -> dict[str, Any]:
        item["frame"] += 1
        return item


class Digest(ConsumerNode):
    """Appends ``index value0 value1 sha`` lines to ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def open(self) -> None:
        self.file = open(self.path, "w")  # noqa: SIM115 - closed in close()

    def consume(self, item: dict[str, Any]) -> None:
        frame = item["frame"]
        digest = hashlib.sha256(frame.tobytes()).hexdigest()[:12]
        self.file.write(f"{item['index']} {int(frame[0, 0, 0])} {int(frame[1, 1, 1])} {digest}\n")

    def close(self) -> None:
        self.file.close()


def expected_digest(index: int, shape: tuple[int, ...], bump: int) -> tuple[int, int, str]:
    frame = np.full(shape, index % 251, dtype=np.uint8)
    frame[0, 0, 0] = 7
    frame += bump
    return int(frame[0, 0, 0]), int(frame[1, 1, 1]), hashlib.sha256(frame.tobytes()).hexdigest()[:12]


class PairDigest(ConsumerNode):
    """Like ``Digest``, for two inputs: appends ``index sha_of_first sha_of_second`` lines to ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def open(self) -> None:
        self.file = open(self.path, "w")  # noqa: SIM115 - closed in close()

    def consume(self, first: dict[str, Any], second: dict[str, Any]) -> None:
        digests = [hashlib.sha256(item["frame"].tobytes()).hexdigest()[:12] for item in (first, second)]
        self.file.write(f"{first['index']} {digests[0]} {digests[1]}\n")

    def close(self) -> None:
        self.file.close()
