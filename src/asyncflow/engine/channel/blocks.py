"""What travels on a channel: blocks of rows as columns, received frames, frozen rows.

A task takes a ``Block`` from its receiver and hands one to its sender; a ``Chunk``
is a received frame's rows waiting to be taken; a ``Frozen`` is a row pickled when
its node returned it (it held something mutable).  See docs/design.md#rows-and-blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import wire

__all__ = ["PICKLED", "Block", "Chunk", "Frozen", "Unreadable", "rows_of"]

class Unreadable:
    """Stands in for rows that could not be unpickled; taking it raises the error."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


PICKLED = -wire.COLS  # a sender's batch of COLS bodies pickled by the task


def rows_of(cols: Sequence[Sequence[Any]], n: int) -> list[tuple[Any, ...]]:
    """``n`` rows as tuples, from their columns (``n`` empty rows when there are none)."""
    return list(zip(*cols, strict=True)) if cols else [()] * n


class Block:
    """``n`` rows as columns: ``cols[j][k]`` is value ``j`` of row ``k``.

    What a task takes from its receiver and hands to its sender.  ``safe``: every
    value is known to be immutable (an int, a float, a string, a tuple of
    them...), so the rows can be pickled whenever the batch is written, all at
    once (``False`` means "maybe not": rows from ``DATA`` frames, and blocks a
    batch method returned, which were pickled without looking at each value).  ``nbytes``
    is an estimate of their size, for batching.  ``complete``: no value is
    ``ABSENT`` (known without looking; ``False`` means "maybe").
    """

    __slots__ = ("born", "cols", "complete", "n", "nbytes", "newest", "safe")

    def __init__(
        self,
        cols: tuple[Sequence[Any], ...],
        n: int,
        nbytes: int,
        safe: bool,
        complete: bool = False,
        born: float = 0.0,
        newest: float = 0.0,
    ) -> None:
        self.cols = cols
        self.n = n
        self.nbytes = nbytes
        self.safe = safe
        self.complete = complete
        self.born = born  # when the oldest row was born (``wire``; 0.0: unknown)
        self.newest = newest  # when the youngest row was born

    @classmethod
    def fromrows_of(
        cls, rows: list[Any], safe: bool, nbytes: int = -1, born: float = 0.0, newest: float = 0.0
    ) -> Block:
        """The block of these row tuples."""
        if nbytes < 0:
            nbytes = 16 * len(rows) * (len(rows[0]) + 1) if rows else 0
        return cls(tuple(zip(*rows, strict=True)), len(rows), nbytes, safe, False, born, newest)

    def rows(self) -> list[tuple[Any, ...]]:
        """The rows as tuples."""
        return rows_of(self.cols, self.n)

    def part(self, start: int, end: int) -> Block:
        """Rows ``start`` .. ``end - 1``."""
        if start == 0 and end == self.n:
            return self
        n = end - start
        return Block(
            tuple(col[start:end] for col in self.cols),
            n,
            self.nbytes * n // max(self.n, 1),
            self.safe,
            self.complete,
            self.born,
            self.newest,
        )

    def project(self, columns: tuple[int, ...]) -> Block:
        """The same rows with only ``columns`` (for one branch after a split)."""
        return Block(
            tuple(self.cols[j] for j in columns), self.n, self.nbytes, self.safe, self.complete, self.born, self.newest
        )


class Chunk:
    """A received frame's rows: as columns (``COLS``), or a list of rows / pickled rows."""

    __slots__ = ("born", "cols", "complete", "n", "nbytes", "newest", "pos", "rows", "safe")

    def __init__(
        self,
        cols: Any,
        rows: list[Any] | None,
        n: int,
        nbytes: int,
        safe: bool,
        complete: bool = False,
        born: float = 0.0,
        newest: float = 0.0,
    ) -> None:
        self.born = born
        self.newest = newest
        self.complete = complete  # no ABSENT in it (COLS frames say so)
        self.cols = cols
        self.rows = rows
        self.n = n
        self.nbytes = nbytes  # what flow control counts once every row is taken
        self.pos = 0  # rows taken so far
        self.safe = safe  # rows of immutable values only (ROWS, and COLS that say so)

    def row_list(self) -> list[Any]:
        if self.rows is None:
            self.rows = rows_of(self.cols, self.n)
        return self.rows


class Frozen:
    """A row pickled when it was produced (it held something mutable).

    ``slots`` are the shared-memory slots its big arrays went to, and ``size`` the
    bytes it stands for (its pickle plus those arrays), which flow control counts.
    """

    __slots__ = ("data", "parts", "size", "slots")

    def __init__(self, data: bytes, slots: list[int], size: int, parts: list[Any] | None = None) -> None:
        self.data = data
        self.slots = slots
        self.size = size
        #: After a split (``tee.Tee``): the row as each branch gets it (a tuple or a ``Frozen``).
        self.parts = parts
