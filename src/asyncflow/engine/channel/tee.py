"""A split of the rows' route: one stage's rows sent on to several branches.

Where the graph branches for good (``core.graph.route``), the stage before the
split sends every row to each branch through a ``Sender`` of the branch's own,
carrying only the columns that branch reads.  Each branch thus has its own credit
and, in ``REALTIME``, its own leaky queue (GStreamer's ``tee`` with a queue per
branch): a slow branch drops for itself, and a fast one gets every row as soon as
it exists.  In ``BATCH`` a row is handed to all branches at once, so the source is
paced by the slowest branch (memory stays bounded) while the others never wait
behind it for a row that is already there.

A row holding something mutable is frozen once per branch (each branch gets its
own copy, and its own shared-memory slots): what one branch's node does to its
input can never reach another branch.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .blocks import Block, Frozen
from .link import Link
from .sender import Sender

__all__ = ["Tee"]


class Tee:
    """Sends a task's rows to several branches; has the interface of ``Sender`` that a task uses."""

    blocks_whole = False  # blocks are projected per branch: never sent pre-pickled

    def __init__(self, senders: list[Sender], columns: list[tuple[int, ...]]) -> None:
        self.senders = senders
        self.columns = columns

    @property
    def links(self) -> list[Link]:
        return [link for sender in self.senders for link in sender.links]

    @property
    def dropped(self) -> int:
        return sum(sender.dropped for sender in self.senders)

    @property
    def sent(self) -> int:
        """Rows handed on (each counted once, however many branches got it)."""
        return max(sender.sent for sender in self.senders)

    @staticmethod
    def _project(row: tuple[Any, ...], columns: tuple[int, ...]) -> tuple[Any, ...]:
        return tuple(row[j] for j in columns)

    def freeze(self, row: tuple[Any, ...]) -> Any:
        """The row fixed for every branch (see ``Sender.freeze``): a tuple, or a ``Frozen`` with parts."""
        parts = [
            sender.freeze(self._project(row, cols)) for sender, cols in zip(self.senders, self.columns, strict=True)
        ]
        if not any(type(part) is Frozen for part in parts):
            return row
        return Frozen(b"", [], 0, parts)

    def _entries(self, entries: list[Any], i: int) -> list[Any]:
        cols = self.columns[i]
        project = self._project
        return [e.parts[i] if type(e) is Frozen and e.parts is not None else project(e, cols) for e in entries]

    async def _all(self, coros: list[Any]) -> None:
        """Run one send per branch; in BATCH at once, so no branch waits behind a slower one."""
        if len(coros) == 1:
            await coros[0]
            return
        results = await asyncio.gather(*coros, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def send_many(self, entries: list[Any], born: float = 0.0, newest: float = 0.0) -> None:
        await self._all(
            [sender.send_many(self._entries(entries, i), born, newest) for i, sender in enumerate(self.senders)]
        )

    async def send_block(self, block: Block) -> None:
        await self._all(
            [sender.send_block(block.project(cols)) for sender, cols in zip(self.senders, self.columns, strict=True)]
        )

    async def send_pickled(self, body: bytes, n: int) -> None:
        raise AssertionError("a Tee never sends pre-pickled blocks (blocks_whole is False)")

    def flush(self) -> None:
        for sender in self.senders:
            sender.flush()

    async def send_stop(self) -> None:
        await self._all([sender.send_stop() for sender in self.senders])

    def close(self) -> None:
        for sender in self.senders:
            sender.close()
