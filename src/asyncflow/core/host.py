"""Nodes that connect a flow to the application that runs it.

``ResultsConsumer`` hands what it receives back to the host, which reads it with
``async for item in flow.results(node)``; ``FeedProducer`` emits what the host
gives it with ``await node.put(x)`` and ends at ``await node.end()``.  Both keep
backpressure: a host that does not read holds the flow back, and ``put`` waits
while the flow is full.  The engine connects them to the parent process with a
channel of their own (the ``host_link`` of their task).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .node import ConsumerNode, ProducerNode

__all__ = ["FeedProducer", "HostChannel", "ResultsConsumer"]


class HostChannel:
    """What a task of a host node is given in its process: an async ``send`` or ``recv``."""

    async def send(self, row: tuple[Any, ...]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def recv(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


class ResultsConsumer(ConsumerNode):
    """Sends every item to the host: ``async for item in flow.results(this_node)``.

    With several parents an item is the tuple of their inputs.  While no one reads,
    items wait (with backpressure) until ``results()`` is iterated; a host that
    stops iterating early lets the rest of the items be discarded so the flow can end.
    """

    _host: HostChannel | None = None

    async def consume(self, *inputs: Any) -> None:
        assert self._host is not None, "ResultsConsumer runs only inside a flow"
        await self._host.send((inputs[0] if len(inputs) == 1 else inputs,))

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_host", None)
        return state


class FeedProducer(ProducerNode):
    """Emits what the host puts: ``await node.put(x)``; ``await node.end()`` ends the stream.

    ``put`` waits until the flow is running and has room (backpressure).  The flow
    ends once every producer has ended, so a flow fed by the host ends after
    ``end()``.
    """

    _host: HostChannel | None = None
    _parent_side: Any = None  # the parent's sender, while the flow runs
    _attached: asyncio.Event | None = None
    _ended = False

    async def next(self) -> Any:
        assert self._host is not None, "FeedProducer runs only inside a flow"
        row = await self._host.recv()
        if row is None:
            raise StopAsyncIteration
        return row[0]

    def _attach(self, sender: Any) -> None:
        self._parent_side = sender
        self._ended = False
        self._event().set()

    def _detach(self) -> None:
        # The event stays set: a put() after the run fails instead of waiting.
        self._parent_side = None

    def _event(self) -> asyncio.Event:
        if self._attached is None:
            self._attached = asyncio.Event()
        return self._attached

    async def put(self, item: Any) -> None:
        """Emit ``item`` (waits for the flow to start and to have room)."""
        await self._event().wait()
        if self._ended:
            raise RuntimeError(f"{self.describe()}: put() after end()")
        sender = self._parent_side
        if sender is None:
            raise RuntimeError(f"{self.describe()}: the flow is not running")
        await sender.send_many([sender.freeze((item,))])

    async def end(self) -> None:
        """End the stream (idempotent)."""
        await self._event().wait()
        sender = self._parent_side
        if sender is not None and not self._ended:
            self._ended = True
            await sender.send_stop()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        for key in ("_host", "_parent_side", "_attached", "_ended"):
            state.pop(key, None)
        return state
