"""``OneTaskProcessorNode``: the base of processors that must run as a single task."""

from __future__ import annotations

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, OnError, ProcessorNode

__all__ = ["OneTaskProcessorNode"]


class OneTaskProcessorNode(ProcessorNode):
    """A processor that always runs as one task, in one process.

    For nodes whose output depends on the items seen before (a running sum, a
    tracker): split over several processes, each would see only part of the
    stream.  The constructor takes no ``nb_tasks`` (as in videoflow) and
    ``nb_tasks`` cannot be set to anything but 1.
    """

    def __init__(
        self, device_type: DeviceType = "cpu", *, name: str | None = None, on_error: OnError = "raise"
    ) -> None:
        super().__init__(1, device_type, name=name, on_error=on_error)

    @property
    def nb_tasks(self) -> int:
        """Always 1."""
        return 1

    @nb_tasks.setter
    def nb_tasks(self, value: int) -> None:
        if value != 1 or isinstance(value, bool):
            raise NodeConfigError(
                f"{self.describe()} is a one-task processor (it keeps state across items): "
                f"nb_tasks must stay 1, got {value!r}"
            )
