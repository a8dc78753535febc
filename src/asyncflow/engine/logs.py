"""Log records of a task's process, sent to the parent and logged there.

In a child, ``ForwardingHandler`` sits on the root logger: whatever the node or
asyncflow logs reaches the parent over the control link as a small dict and is
re-logged there by ``relog`` under the same logger name, prefixed with the task,
so that the host's logging configuration (handlers, levels, pytest's caplog)
sees every process's records.  A child's log level is the parent's
``flow_options["log_level"]`` (WARNING when unset, as Python's default).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ForwardingHandler", "SkipLog", "relog"]


class ForwardingHandler(logging.Handler):
    """Sends each record through ``send`` (on the event loop's thread)."""

    def __init__(self, send: Callable[[Any], None], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._send = send
        self._loop = loop
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = {
                "name": record.name,
                "level": record.levelno,
                "message": record.getMessage(),
                "exc_text": self.formatter.formatException(record.exc_info)
                if record.exc_info and self.formatter
                else (logging.Formatter().formatException(record.exc_info) if record.exc_info else None),
            }
            if threading.get_ident() == self._thread:
                self._send(("log", message))
            else:
                self._loop.call_soon_threadsafe(self._send, ("log", message))
        except Exception:
            self.handleError(record)


def relog(task: str, record: dict[str, Any]) -> None:
    """Log a child's record in the parent, under its logger's name, naming the task."""
    text = f"[{task}] {record['message']}"
    if record.get("exc_text"):
        text = f"{text}\n{record['exc_text']}"
    logging.getLogger(record["name"]).log(record["level"], text)


class SkipLog:
    """Logs the items a node with ``on_error="skip"`` drops: once per exception type, with its traceback."""

    def __init__(self, logger: logging.Logger, node: Any, task: str) -> None:
        self.logger = logger
        self.node = node
        self.task = task
        self.logged: set[type[BaseException]] = set()

    def __call__(self, phase: str, exc: Exception) -> None:
        if type(exc) in self.logged:
            return
        self.logged.add(type(exc))
        self.logger.warning(
            "%s (task %s): %s() raised %s; skipping this item (on_error='skip'), and later %s errors silently",
            self.node.describe(),
            self.task,
            phase,
            type(exc).__name__,
            type(exc).__name__,
            exc_info=exc,
        )
