"""What the parts of a task share: its constants, the node-call helpers, the errors it raises."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Sequence
from types import CoroutineType
from typing import Any

from ...core.graph import ABSENT
from .. import wire

__all__ = ["compile_build"]

log = logging.getLogger("asyncflow.task")

_PARENT_GONE_EXIT = 70
_CONTROL_CLOSE_TIMEOUT = 10.0
_STATS_INTERVAL = 0.5  # seconds between live stats reports to the parent
_SAMPLES = 256  # per-item times kept for percentiles


#: Types whose values are immutable and small: kept as they are, no freezing, 8 bytes
#: each for batching.  Enum types join when first seen (``TaskRunner._settle``).
_SAFE: set[type] = {*wire.SCALARS, type(ABSENT)}


class _Failed(Exception):
    """Internal: the node failed and the failure has been reported."""


#: What a node's method may raise that fails the node.  BaseExceptions other than
#: cancellation (``sys.exit()``, a stray ``KeyboardInterrupt``, ``GeneratorExit``)
#: fail it too: they must not escape the task's loop, which would leave the task
#: neither finished nor reported (the flow would hang).  ``on_error="skip"`` skips
#: only ``Exception`` s.
_NODE_ERRORS: tuple[type[BaseException], ...] = (Exception, KeyboardInterrupt, SystemExit, GeneratorExit)


class _BaseRaised(Exception):
    """Carries a BaseException that a node's coroutine raised in a task of its own (``_await_next``)."""


async def _catching_base(coro: Any) -> Any:
    """Await ``coro``; a BaseException from it (not cancellation) comes back as ``_BaseRaised``.

    asyncio re-raises a ``KeyboardInterrupt`` / ``SystemExit`` raised in a Task out of
    the event loop itself, past every handler in the task's own code.
    """
    try:
        return await coro
    except (KeyboardInterrupt, SystemExit, GeneratorExit) as exc:
        raise _BaseRaised() from exc


def _is_async(method: Callable[..., Any]) -> bool:
    return asyncio.iscoroutinefunction(method)


def compile_build(sources: tuple[int, ...]) -> Callable[[tuple[Any, ...], Any], tuple[Any, ...]]:
    """A function ``(row, value) -> next row`` for a stage's ``out_sources``.

    Generated as a tuple display (``(row[0], value, row[2])``), which is several
    times faster per row than a generic comprehension; the sources are ints.
    """
    parts = ", ".join("value" if s < 0 else f"row[{int(s)}]" for s in sources)
    code = f"lambda row, value: ({parts}{',' if len(sources) == 1 else ''})"
    built: Callable[[tuple[Any, ...], Any], tuple[Any, ...]] = eval(code)
    return built


def _unreadable_error(source: str, node: Any, exc: Exception) -> TypeError:
    """The error for an output of ``source`` that ``node``'s task cannot unpickle."""
    error = TypeError(
        f"an output of {source!r} could not be read back in {node.describe()}'s process "
        f"({type(exc).__name__}: {exc}); values must survive pickle.loads(pickle.dumps(value)), e.g. an "
        "exception class whose __init__ takes other arguments than its args does not"
    )
    error.__cause__ = exc
    return error


def _private(column: Sequence[Any]) -> list[Any]:
    """``column`` with every mutable value replaced by a deep copy of it."""
    size = wire.immutable_size
    return [v if size((v,)) >= 0 else copy.deepcopy(v) for v in column]


async def _call(method: Callable[..., Any], is_async: bool, *args: Any) -> Any:
    result = method(*args)
    if is_async or type(result) is CoroutineType or asyncio.isfuture(result):
        result = await result
    return result
