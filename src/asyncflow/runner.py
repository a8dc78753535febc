"""``asyncflow.run(flow)``: the synchronous entry point for scripts."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import TYPE_CHECKING

import uvloop

if TYPE_CHECKING:
    from .core.flow import Flow

__all__ = ["run"]


def run(flow: Flow) -> None:
    """Run ``flow`` to its end on a new uvloop event loop, handling Ctrl-C.

    The first Ctrl-C stops the flow gracefully (``run`` then returns normally:
    the user asked for it); a second one ends the processes hard and raises
    ``KeyboardInterrupt``.  Errors raise ``FlowError``.
    """
    interrupts = 0

    async def main() -> None:
        nonlocal interrupts
        loop = asyncio.get_running_loop()

        def on_sigint() -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts == 1:
                flow.stop()
            else:
                flow.kill()

        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        try:
            await flow.run()
        finally:
            if in_main:
                loop.remove_signal_handler(signal.SIGINT)

    from .core.errors import FlowKilledError

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(main())
        except FlowKilledError as exc:
            if interrupts >= 2:
                raise KeyboardInterrupt from exc
            raise
