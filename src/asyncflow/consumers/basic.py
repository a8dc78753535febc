"""Basic consumers: print items, drop them, or append them to a file as JSON lines."""

from __future__ import annotations

import json
import os
from typing import IO, Any

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import ConsumerNode, OnError

__all__ = ["CommandlineConsumer", "FileAppenderConsumer", "VoidConsumer"]


class CommandlineConsumer(ConsumerNode):
    """Print each item to standard output, as ``print(*inputs, sep=sep, end=end)`` would.

    Output is flushed after each item: the consumer runs in a child process that
    shares the terminal, and buffered lines would come out late or interleaved.
    """

    def __init__(
        self, sep: str = " ", end: str = "\n", *, name: str | None = None, on_error: OnError = "raise"
    ) -> None:
        super().__init__(name=name, on_error=on_error)
        for arg, value in (("sep", sep), ("end", end)):
            if not isinstance(value, str):
                raise NodeConfigError(
                    f"{self.describe()}: {arg} must be a str, got {value!r} ({type(value).__name__})"
                )
        self.sep = sep
        self.end = end

    def consume(self, *inputs: Any) -> None:
        """Print the item (the inputs, separated by ``sep``, when the node has several parents)."""
        print(*inputs, sep=self.sep, end=self.end, flush=True)


class VoidConsumer(ConsumerNode):
    """Drop every item: a sink for flows run for their side effects, or to debug them."""

    def __init__(self, *, name: str | None = None, on_error: OnError = "raise") -> None:
        super().__init__(name=name, on_error=on_error)

    def consume(self, *inputs: Any) -> None:
        """Do nothing with the item."""

    def consume_batch(self, *columns: list[Any]) -> None:
        """Do nothing with a block of items."""


class FileAppenderConsumer(ConsumerNode):
    """Append each item to a file as one line of JSON (a JSON list when the node has several parents).

    The file is opened in append mode (created if missing) by ``open()``, flushed
    after each line, and closed by ``close()``.  An item that JSON cannot encode
    raises ``TypeError`` naming the node.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, name: str | None = None, on_error: OnError = "raise"
    ) -> None:
        super().__init__(name=name, on_error=on_error)
        if not isinstance(path, (str, os.PathLike)):
            raise NodeConfigError(
                f"{self.describe()}: path must be a str or a path, got {path!r} ({type(path).__name__})"
            )
        self.path = os.fspath(path)
        if not self.path:
            raise NodeConfigError(f"{self.describe()}: path must not be empty")
        self._file: IO[str] | None = None

    def open(self) -> None:
        """Open the file for appending."""
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def consume(self, *inputs: Any) -> None:
        """Write the item as one JSON line and flush it."""
        if self._file is None:
            raise RuntimeError(f"{self.describe()}: consume() was called before open(); call open() first")
        item = inputs[0] if len(inputs) == 1 else list(inputs)
        try:
            line = json.dumps(item)
        except TypeError as exc:
            raise TypeError(
                f"{self.describe()} cannot write {type(item).__name__} item {item!r:.200} as JSON: {exc}"
            ) from exc
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_file"] = None  # an open file does not pickle; open() makes one in the new process
        return state
