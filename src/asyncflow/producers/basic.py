"""Basic producers: a counter (videoflow's ``IntProducer``) and an iterable's items."""

from __future__ import annotations

import itertools
import math
import numbers
import time
from collections.abc import Iterable, Iterator
from typing import Any

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import ProducerNode

__all__ = ["IntProducer", "IterableProducer"]


def _check_int(owner: str, arg: str, value: object) -> int:
    # numbers.Integral admits numpy integers; bool is an int but never a count.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise NodeConfigError(f"{owner}: {arg} must be an int, got {value!r} ({type(value).__name__})")
    return int(value)


def _check_real(owner: str, arg: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
        raise NodeConfigError(f"{owner}: {arg} must be a number, got {value!r} ({type(value).__name__})")
    return float(value)


class IntProducer(ProducerNode):
    """Emit the integers ``start_value`` .. ``end_value`` (inclusive), optionally paced.

    ``end_value=None`` counts forever.  Between two items the producer sleeps
    ``wait_time_in_seconds``; ``fps > 0`` overrides it with ``1 / fps`` (``fps <= 0``
    is ignored, as in videoflow).  There is no sleep before the first item nor after
    the last.  The count restarts at ``start_value`` on every ``open()``, so the node
    can be run again.
    """

    def __init__(
        self,
        start_value: int = 0,
        end_value: int | None = None,
        wait_time_in_seconds: float = 0,
        fps: float = -1,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        owner = self.describe()
        self.start_value = _check_int(owner, "start_value", start_value)
        self.end_value = None if end_value is None else _check_int(owner, "end_value", end_value)
        if self.end_value is not None and self.end_value < self.start_value:
            raise NodeConfigError(
                f"{owner}: end_value ({self.end_value}) must be >= start_value ({self.start_value}); "
                "end_value is inclusive, use None to count forever"
            )
        self.wait_time_in_seconds = _check_real(owner, "wait_time_in_seconds", wait_time_in_seconds)
        if self.wait_time_in_seconds < 0 or math.isinf(self.wait_time_in_seconds):
            raise NodeConfigError(
                f"{owner}: wait_time_in_seconds must be a finite number >= 0, got {wait_time_in_seconds!r}"
            )
        self.fps = _check_real(owner, "fps", fps)
        self.open()

    @property
    def interval(self) -> float:
        """Seconds slept between two items: ``1 / fps`` when ``fps > 0``, else ``wait_time_in_seconds``."""
        return 1.0 / self.fps if self.fps > 0 else self.wait_time_in_seconds

    @property
    def len_hint(self) -> int | None:
        """How many items the producer will emit (``None``: forever), for progress bars."""
        return None if self.end_value is None else self.end_value - self.start_value + 1

    def open(self) -> None:
        """Restart the count at ``start_value``."""
        self._current = self.start_value
        self._emitted = False
        # Read on every item: fixed here rather than looked up each time.
        self._last: float = math.inf if self.end_value is None else self.end_value
        self._wait = self.interval

    def next(self) -> int:
        """Return the next integer (after sleeping ``interval``); raise ``StopIteration`` past the end."""
        value = self._current
        if value > self._last:
            raise StopIteration
        if self._wait and self._emitted:
            time.sleep(self._wait)
        self._current = value + 1
        self._emitted = True
        return value

    def next_batch(self, max_items: int) -> list[int]:
        """Up to ``max_items`` next integers at once (one when paced); ``StopIteration`` past the end."""
        if self._wait > 0:
            return [self.next()]
        start = self._current
        stop = start + max_items
        if self.end_value is not None:
            if start > self.end_value:
                raise StopIteration
            stop = min(stop, self.end_value + 1)
        self._current = stop
        self._emitted = True
        return list(range(start, stop))


class IterableProducer(ProducerNode):
    """Emit the items of an iterable, one per ``next()``.

    The iterable travels to the producer's process by pickling, so it must pickle
    (a list, a tuple, a ``range``; not a generator).  The iterator is made in
    ``open()``, so each run starts from the first item again, unless the iterable
    is itself a one-shot iterator.
    """

    def __init__(self, iterable: Iterable[Any], *, name: str | None = None) -> None:
        super().__init__(name=name)
        try:
            iter(iterable)
        except TypeError:
            raise NodeConfigError(
                f"{self.describe()}: iterable must be an iterable (a list, a tuple, a range...), "
                f"got {iterable!r} ({type(iterable).__name__})"
            ) from None
        self.iterable = iterable
        self._iterator: Iterator[Any] | None = None

    @property
    def len_hint(self) -> int | None:
        """The iterable's length when it has one (a list, a range), for progress bars."""
        try:
            return len(self.iterable)  # type: ignore[arg-type]
        except TypeError:
            return None

    def open(self) -> None:
        """Start iterating from the first item."""
        self._iterator = iter(self.iterable)

    def next(self) -> Any:
        """Return the next item; raise ``StopIteration`` after the last."""
        if self._iterator is None:
            raise RuntimeError(f"{self.describe()}: next() was called before open(); call open() first")
        return next(self._iterator)

    def next_batch(self, max_items: int) -> list[Any]:
        """Up to ``max_items`` next items at once; ``StopIteration`` after the last."""
        if self._iterator is None:
            raise RuntimeError(f"{self.describe()}: next_batch() was called before open(); call open() first")
        items = list(itertools.islice(self._iterator, max_items))
        if not items:
            raise StopIteration
        return items

    def close(self) -> None:
        """Drop the iterator."""
        self._iterator = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_iterator"] = None  # run-time state: made again by open() in the new process
        return state
