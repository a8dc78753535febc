"""``asyncflow.run(flow)``: the synchronous entry point for scripts."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import TYPE_CHECKING

import uvloop

if TYPE_CHECKING:
    from rich.console import Console

    from .core.flow import Flow

__all__ = ["run"]


def run(flow: Flow, *, progress: bool = False, report: bool = False, console: Console | None = None) -> None:
    """Run ``flow`` to its end on a new uvloop event loop, handling Ctrl-C.

    The first Ctrl-C stops the flow gracefully (``run`` then returns normally:
    the user asked for it); a second one ends the processes hard and raises
    ``KeyboardInterrupt``.  SIGTERM also stops the flow gracefully, then raises
    ``SystemExit(143)`` (128 + SIGTERM, as a shell reports it) so that a script
    asked to terminate does terminate; a signal after it ends the processes hard.
    Errors raise ``FlowError``.

    ``progress=True`` shows ``asyncflow.monitor.LiveDisplay`` while the flow runs (a
    live table on a terminal, one summary line otherwise); ``report=True`` prints
    ``asyncflow.monitor.bottleneck_report`` once the flow has ended (finished or
    stopped gracefully; not after an error).  Both draw on ``console`` (default: a
    rich ``Console`` on stderr, see ``asyncflow.monitor.live.default_console``).

    It makes its own event loop, so it cannot be called from a coroutine (an event
    loop is running there): it then raises ``RuntimeError`` at once, before
    anything starts; use ``await flow.run()`` there instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running in this thread: the normal case
    else:
        raise RuntimeError(
            "asyncflow.run() was called inside a running event loop (from a coroutine); "
            "it starts its own loop: use `await flow.run()` there instead"
        )
    interrupts = 0
    terminated = False
    if (progress or report) and console is None:
        from .monitor.live import default_console

        console = default_console()

    async def watched() -> None:
        from .core.errors import FlowKilledError
        from .monitor.live import LiveDisplay

        display = LiveDisplay(flow, console=console)
        display.start()
        outcome = "failed"
        try:
            await flow.run()
            outcome = "stopped" if interrupts else "finished"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except FlowKilledError:
            outcome = "killed"
            raise
        finally:
            display.stop(outcome)

    async def main() -> None:
        nonlocal interrupts
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            nonlocal interrupts, terminated
            interrupts += 1
            terminated = terminated or signum == signal.SIGTERM
            if interrupts == 1:
                flow.stop()
            else:
                flow.kill()

        in_main = threading.current_thread() is threading.main_thread()
        handled = (signal.SIGINT, signal.SIGTERM) if in_main else ()
        for signum in handled:
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            # flow_options["progress"] makes flow.run() show the display itself.
            await (watched() if progress and not flow.options.progress else flow.run())
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)

    from .core.errors import FlowKilledError

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(main())
        except FlowKilledError as exc:
            if interrupts >= 2:
                raise KeyboardInterrupt from exc
            raise
    if report:
        from .monitor.report import bottleneck_report

        bottleneck_report(flow).render(console)
    if terminated:
        raise SystemExit(128 + signal.SIGTERM)
