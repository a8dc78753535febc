"""Nodes for the differential tests (tests/engine/test_differential.py).

At module level so spawned children can unpickle them.  Every value is an int and
every function is plain arithmetic (no ``hash``: str hashing is salted per process),
so a child computes exactly what the in-process oracle computes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode


def mix(k: int, inputs: Sequence[int]) -> int:
    """Processor ``k``'s output for ``inputs``: depends on k, on each input and on their order."""
    return (sum((i + 1) * x for i, x in enumerate(inputs)) * (k + 3) + k) % 1009


class SeqProducer(ProducerNode):
    """Emits ``values`` in order, then ends."""

    def __init__(self, values: Sequence[int], *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.values = tuple(values)

    def open(self) -> None:
        self.i = 0

    def next(self) -> int:
        if self.i >= len(self.values):
            raise StopIteration
        self.i += 1
        return self.values[self.i - 1]


class MixProcessor(ProcessorNode):
    """``process(*inputs) = mix(k, inputs)``."""

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = k

    def process(self, *inputs: int) -> int:
        return mix(self.k, inputs)


class RowRecorder(ConsumerNode):
    """Appends each call's inputs, as one JSON list per line, to ``path``."""

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = str(path)

    def open(self) -> None:
        self.file = open(self.path, "a")  # noqa: SIM115 - closed in close()

    def consume(self, *inputs: int) -> None:
        self.file.write(json.dumps(list(inputs)) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def rows(path: str | os.PathLike[str]) -> list[list[int]]:
    """What a RowRecorder wrote (``[]`` if it wrote nothing, or never opened the file)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line]
