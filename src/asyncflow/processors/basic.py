"""Basic processors: identity, a wrapped function, and a joiner of several inputs."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from typing import Any

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, OnError, ProcessorNode

__all__ = ["FunctionProcessor", "FunctionProcessorNode", "IdentityProcessor", "JoinerProcessor"]


def _wait_from_fps(owner: str, fps: object) -> float:
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or math.isnan(float(fps)):
        raise NodeConfigError(f"{owner}: fps must be a number, got {fps!r} ({type(fps).__name__})")
    rate = float(fps)
    # As in videoflow: fps <= 0 means "no delay".
    return 1.0 / rate if rate > 0 else 0.0


class _PacedProcessor(ProcessorNode):
    """A processor with videoflow's ``fps`` first argument: ``fps > 0`` sleeps ``1 / fps`` s an item."""

    def __init__(
        self,
        fps: float = -1,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        self._wait = _wait_from_fps(self.describe(), fps)
        self.fps = fps

    def _pace(self) -> None:
        if self._wait > 0:
            time.sleep(self._wait)


class IdentityProcessor(_PacedProcessor):
    """Pass each item through unchanged (a tuple of them when the node has several parents).

    ``fps > 0`` sleeps ``1 / fps`` seconds per item, to simulate a slow stage, as in
    videoflow, whose first positional argument it also is.
    """

    def process(self, *inputs: Any) -> Any:
        """Return the input (the tuple of inputs when there are several)."""
        if self._wait > 0:  # checked here: this is on every item's path
            self._pace()
        return inputs[0] if len(inputs) == 1 else inputs

    def process_batch(self, *columns: list[Any]) -> list[Any]:
        """``process`` on a block of rows: one list per parent in, the list of outputs out."""
        if self._wait > 0:
            return [self.process(*row) for row in zip(*columns, strict=True)]
        return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))


class JoinerProcessor(_PacedProcessor):
    """Join one item of each parent into a tuple, in the order the parents were given.

    ``fps > 0`` sleeps ``1 / fps`` seconds per item, as in videoflow.
    """

    def process(self, *inputs: Any) -> tuple[Any, ...]:
        """Return the tuple of the inputs."""
        self._pace()
        return inputs


class FunctionProcessor(ProcessorNode):
    """Turn a function into a processor: ``process(*inputs)`` returns ``processor_function(*inputs)``.

    The function travels to the node's processes by pickling, so it must be defined
    at module top level (not a lambda nor a nested function).  An ``async def``
    function is fine: ``process`` then returns its coroutine, which the engine
    awaits like the result of an ``async def process``.
    """

    def __init__(
        self,
        processor_function: Callable[..., Any],
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error)
        if not callable(processor_function):
            raise NodeConfigError(
                f"{self.describe()}: processor_function must be callable, "
                f"got {processor_function!r} ({type(processor_function).__name__})"
            )
        self.processor_function = processor_function

    def process(self, *inputs: Any) -> Any:
        """Return ``processor_function(*inputs)`` (a coroutine when the function is ``async def``)."""
        return self.processor_function(*inputs)


class FunctionProcessorNode(FunctionProcessor):
    """videoflow's name for :class:`FunctionProcessor`, with videoflow's argument names.

    ``FunctionProcessorNode(f, nb_proc=2, device="cpu")`` means
    ``FunctionProcessor(f, nb_tasks=2, device_type="cpu")``.
    """

    def __init__(
        self,
        processor_function: Callable[..., Any],
        nb_proc: int = 1,
        device: DeviceType = "cpu",
        *,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(processor_function, nb_proc, device, name=name, ordered=ordered, on_error=on_error)
