"""Nodes for pool tests: they say which process ran them and what it still held."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode


class WhereAmI(ProcessorNode):
    """Identity that appends ``{"pid", "handlers", "leftover"}`` to ``path`` in open().

    ``leftover`` says whether an attribute set by an earlier task of the same class
    is still visible in the process (module-level state persists, nodes must not).
    """

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path

    def open(self) -> None:
        record = {
            "pid": os.getpid(),
            "handlers": len(logging.getLogger().handlers),
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def process(self, x: Any) -> Any:
        return x


def where(path: str | Path) -> list[dict[str, Any]]:
    """What ``WhereAmI`` nodes wrote."""
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


class Stuck(ConsumerNode):
    """Never returns from consume() (a stuck task); creates ``path`` when it gets stuck."""

    def __init__(self, path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = path

    def consume(self, x: Any) -> None:
        Path(self.path).touch()
        while True:
            time.sleep(1)
