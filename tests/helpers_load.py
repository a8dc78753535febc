"""Nodes for the load tests (module level, so spawned children can unpickle them).

They measure from inside the child processes and leave what they measured in files:
RSS (``/proc/self/statm``), item counters that the test reads while the flow runs
(an 8-byte counter in a memory-mapped file, exact and cheap to update per item),
and sha256 checksums of large items.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import resource
import struct
import time
from pathlib import Path
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode

_COUNTER = struct.Struct("<Q")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of the calling process, from ``/proc/self/statm``."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss_bytes() -> int:
    """Peak resident set size of the calling process (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_counter(path: str | os.PathLike[str]) -> None:
    """Create (or reset) a counter file that a node and the test share."""
    Path(path).write_bytes(_COUNTER.pack(0))


def read_counter(path: str | os.PathLike[str]) -> int:
    """The value a node last stored in a counter file."""
    return int(_COUNTER.unpack(Path(path).read_bytes()[: _COUNTER.size])[0])


class _Counter:
    """A counter that a child process stores, per item, into a shared memory-mapped file."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, _COUNTER.size)

    def store(self, value: int) -> None:
        _COUNTER.pack_into(self._map, 0, value)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


# -- soak ------------------------------------------------------------------------


class PaddedCountProducer(ProducerNode):
    """Emits ``n`` items of ``size`` bytes: the index (8 bytes, little-endian) and padding."""

    def __init__(self, n: int, size: int = 256, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n
        self.size = size

    def open(self) -> None:
        self.i = 0
        self.pad = b"x" * (self.size - 8)

    def next(self) -> bytes:
        i = self.i
        if i >= self.n:
            raise StopIteration
        self.i = i + 1
        return i.to_bytes(8, "little") + self.pad


class RssConsumer(ConsumerNode):
    """Counts items, checks their size and order, and samples its own RSS.

    RSS is read when ``mark`` items have been consumed and again in ``close()``; both,
    with the count, are written to ``path`` (JSON) in ``close()``.
    """

    def __init__(self, path: str, mark: int, size: int = 256, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = path
        self.mark = mark
        self.size = size

    def open(self) -> None:
        self.count = 0
        self.bad = 0  # items of the wrong size or out of order
        self.rss_mark: int | None = None
        self.started = time.perf_counter()

    def consume(self, item: bytes) -> None:
        if len(item) != self.size or int.from_bytes(item[:8], "little") != self.count:
            self.bad += 1
        self.count += 1
        if self.count == self.mark:
            self.rss_mark = rss_bytes()

    def close(self) -> None:
        result = {
            "count": self.count,
            "bad": self.bad,
            "rss_mark": self.rss_mark,
            "rss_end": rss_bytes(),
            "peak_rss": peak_rss_bytes(),
            "seconds": time.perf_counter() - self.started,
        }
        Path(self.path).write_text(json.dumps(result))


# -- backpressure ----------------------------------------------------------------


class CountingProducer(ProducerNode):
    """Emits 0, 1, 2, ... forever, no sleep; stores how many it emitted in a counter file."""

    def __init__(self, counter: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.counter = counter

    def open(self) -> None:
        self.i = 0
        self._counter = _Counter(self.counter)

    def next(self) -> int:
        i = self.i
        self.i = i + 1
        self._counter.store(self.i)  # counted as emitted from the moment next() returns it
        return i

    def close(self) -> None:
        self._counter.close()


class SlowCheckingConsumer(ConsumerNode):
    """Sleeps ``delay`` per item, then counts it; checks the items are 0, 1, 2, ... in order.

    The count is stored in a counter file after each item; ``close()`` writes the
    final count and whether the items formed a gap-free prefix to ``path`` (JSON).
    """

    def __init__(self, counter: str, path: str, delay: float = 0.001, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.counter = counter
        self.path = path
        self.delay = delay

    def open(self) -> None:
        self.count = 0
        self.first_gap: int | None = None
        self._counter = _Counter(self.counter)

    def consume(self, item: int) -> None:
        time.sleep(self.delay)
        if item != self.count and self.first_gap is None:
            self.first_gap = self.count
        self.count += 1
        self._counter.store(self.count)

    def close(self) -> None:
        self._counter.close()
        Path(self.path).write_text(json.dumps({"count": self.count, "first_gap": self.first_gap}))


# -- several flows at once -------------------------------------------------------


class WordProducer(ProducerNode):
    """Emits the words ``w0``, ``w1``, ... ``w{n-1}``."""

    def __init__(self, n: int, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n

    def open(self) -> None:
        self.i = 0

    def next(self) -> str:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return f"w{self.i - 1}"


class Upper(ProcessorNode):
    """Upper-cases a string and appends a suffix."""

    def __init__(self, suffix: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suffix = suffix

    def process(self, word: str) -> str:
        return word.upper() + self.suffix


class Square(ProcessorNode):
    """Squares a number."""

    def process(self, x: int) -> int:
        return x * x


# -- large items -----------------------------------------------------------------


class BigRandomProducer(ProducerNode):
    """Emits ``n`` random items of ``size`` bytes; appends each one's sha256 to ``path``."""

    def __init__(self, n: int, size: int, path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n = n
        self.size = size
        self.path = path

    def open(self) -> None:
        self.i = 0

    def next(self) -> bytes:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        data = os.urandom(self.size)
        with open(self.path, "a") as f:
            f.write(hashlib.sha256(data).hexdigest() + "\n")
        return data


class ChecksumConsumer(ConsumerNode):
    """Appends the size and sha256 of each item to ``path``; records its peak RSS in ``close()``."""

    def __init__(self, path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = path

    def open(self) -> None:
        self.file = open(self.path, "a")  # noqa: SIM115 - closed in close()

    def consume(self, data: bytes) -> None:
        self.file.write(json.dumps({"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.write(json.dumps({"peak_rss": peak_rss_bytes()}) + "\n")
        self.file.close()
