"""What every engine's scheduler shares: the stop request, the kill timer, the wake-up.

``request_stop`` and ``kill`` are called on the loop's thread (``Flow.stop`` gets
there with ``call_soon_threadsafe``); a scheduler waits for its state to change
on ``_changed``, which ``_poke`` sets.
"""

from __future__ import annotations

import asyncio

from ..core.errors import FlowError

__all__ = ["StopControl"]


class StopControl:
    """Base of the schedulers: graceful stop, a deadline after which tasks are killed."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._stop_requested = False
        self._kill_timer: asyncio.TimerHandle | None = None
        self._kill_reason: str | None = None
        self._error: FlowError | None = None

    def request_stop(self, timeout: float | None = None) -> None:
        """Stop gracefully; with ``timeout``, kill what is still running after that long."""
        self._stop_requested = True
        if timeout is not None:
            self._arm_kill(timeout, f"stop(timeout={timeout}) expired")
        self._poke()

    def kill(self, reason: str) -> None:
        """End every task hard now (each engine its own way)."""
        raise NotImplementedError

    def _arm_kill(self, delay: float, reason: str) -> None:
        """Kill in ``delay`` seconds, unless an earlier kill is already set."""
        if self._loop is None:
            return
        if self._kill_timer is not None and self._kill_timer.when() <= self._loop.time() + delay:
            return
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._kill_timer = self._loop.call_later(delay, self.kill, reason)

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()
