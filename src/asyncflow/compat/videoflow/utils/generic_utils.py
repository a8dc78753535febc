"""videoflow's ``videoflow.utils.generic_utils``: ``Progbar``, ``DelayedInterrupt``, ``DelayedKeyboardInterrupt``.

- ``Progbar(target, width=30, verbose=1, interval=0.05, stateful_metrics=None)``: a
  text progress bar with ``update(current, values=None)`` and ``add(n, values=None)``
  (Keras'), as videoflow's: ``values`` are ``(name, value)`` pairs, averaged over the
  steps unless their name is in ``stateful_metrics``.  Written to ``sys.stdout``.
- ``DelayedInterrupt(signals)``: a ``with`` block during which the given signals are
  held back, then delivered to their previous handlers when the block ends;
  ``DelayedKeyboardInterrupt()`` does so for ``SIGINT`` (Ctrl-C).  The main thread
  only, as any ``signal.signal`` call.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from types import FrameType, TracebackType
from typing import Any

__all__ = ["DelayedInterrupt", "DelayedKeyboardInterrupt", "Progbar"]


class Progbar:
    """A progress bar for ``target`` steps (``None``: unknown), printed on ``sys.stdout``.

    ``verbose=1`` redraws one line (on a terminal; one line per update otherwise) at
    most every ``interval`` seconds and at the end; ``verbose=2`` prints one summary
    line when ``target`` is reached; ``verbose=0`` prints nothing.
    """

    def __init__(
        self,
        target: int | None,
        width: int = 30,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Iterable[str] | None = None,
    ) -> None:
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stateful_metrics = set(stateful_metrics or ())
        self._dynamic_display = (hasattr(sys.stdout, "isatty") and sys.stdout.isatty()) or "ipykernel" in sys.modules
        self._total_width = 0
        self._seen_so_far = 0
        self._values: dict[str, list[float]] = {}
        self._start = time.time()
        self._last_update = 0.0

    def update(self, current: int, values: Sequence[tuple[str, float]] | None = None) -> None:
        """Move the bar to step ``current``, folding in ``values`` (``(name, value)`` pairs)."""
        steps = current - self._seen_so_far
        for key, value in values or ():
            if key in self.stateful_metrics:
                self._values[key] = [value, 1]
            elif key not in self._values:
                self._values[key] = [value * steps, steps]
            else:
                self._values[key][0] += value * steps
                self._values[key][1] += steps
        self._seen_so_far = current
        now = time.time()
        finished = self.target is not None and current >= self.target
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finished:
                return
            self._draw(current, now, finished)
        elif self.verbose == 2 and (self.target is None or finished):
            sys.stdout.write(f" - {now - self._start:.0f}s{self._metrics()}\n")
            sys.stdout.flush()
        self._last_update = now

    def add(self, n: int, values: Sequence[tuple[str, float]] | None = None) -> None:
        """Move the bar ``n`` steps on."""
        self.update(self._seen_so_far + n, values)

    def _draw(self, current: int, now: float, finished: bool) -> None:
        previous_width = self._total_width
        sys.stdout.write("\b" * previous_width + "\r" if self._dynamic_display else "\n")
        if self.target is not None:
            digits = int(math.log10(self.target)) + 1 if self.target > 0 else 1
            done = int(self.width * current / self.target) if self.target > 0 else self.width
            bar = f"{current:{digits}d}/{self.target} ["
            if done > 0:
                bar += "=" * (done - 1) + (">" if current < self.target else "=")
            bar += "." * (self.width - done) + "]"
        else:
            bar = f"{current:7d}/Unknown"
        per_step = (now - self._start) / current if current else 0.0
        if self.target is not None and not finished:
            eta = per_step * (self.target - current)
            if eta > 3600:
                shown = f"{eta // 3600:.0f}:{(eta % 3600) // 60:02.0f}:{eta % 60:02.0f}"
            elif eta > 60:
                shown = f"{eta // 60:.0f}:{eta % 60:02.0f}"
            else:
                shown = f"{eta:.0f}s"
            info = f" - ETA: {shown}"
        elif per_step >= 1:
            info = f" - {now - self._start:.0f}s {per_step:.0f}s/step"
        elif per_step >= 1e-3:
            info = f" - {now - self._start:.0f}s {per_step * 1e3:.0f}ms/step"
        else:
            info = f" - {now - self._start:.0f}s {per_step * 1e6:.0f}us/step"
        info += self._metrics()
        self._total_width = len(bar) + len(info)
        if previous_width > self._total_width:
            info += " " * (previous_width - self._total_width)
        if finished:
            info += "\n"
        sys.stdout.write(bar + info)
        sys.stdout.flush()

    def _metrics(self) -> str:
        text = ""
        for key, (total, count) in self._values.items():
            mean = total / max(1, count)
            text += f" - {key}: {mean:.4f}" if abs(mean) > 1e-3 else f" - {key}: {mean:.4e}"
        return text


_Handler = Any  # what signal.getsignal returns: a callable, SIG_DFL / SIG_IGN, or None


class DelayedInterrupt:
    """Hold ``signals`` back during a ``with`` block; deliver them to their handlers when it ends."""

    def __init__(self, signals: int | Sequence[int]) -> None:
        self.sigs: list[int] = [signals] if isinstance(signals, int) else list(signals)
        self.signal_received: dict[int, tuple[int, FrameType | None] | None] = {}
        self.old_handlers: dict[int, _Handler] = {}

    def __enter__(self) -> None:
        self.signal_received = {}
        self.old_handlers = {}
        for sig in self.sigs:
            self.signal_received[sig] = None
            self.old_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, self._hold)

    def _hold(self, sig: int, frame: FrameType | None) -> None:
        self.signal_received[sig] = (sig, frame)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig in self.sigs:
            handler = self.old_handlers[sig]
            signal.signal(sig, handler)
            received = self.signal_received.get(sig)
            if received is not None and callable(handler):
                handler(*received)


class DelayedKeyboardInterrupt(DelayedInterrupt):
    """Hold Ctrl-C (``SIGINT``) back during a ``with`` block; raise it when the block ends."""

    def __init__(self) -> None:
        super().__init__([signal.SIGINT])
