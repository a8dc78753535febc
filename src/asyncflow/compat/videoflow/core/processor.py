"""videoflow's ``videoflow.core.processor``: the ``Processor`` interface (``process(item)``)."""

from __future__ import annotations

from typing import Any

__all__ = ["Processor"]


class Processor:
    """videoflow's bare processing interface: subclasses implement ``process(item)``.

    Not a node (as in videoflow): a flow's processors derive from
    ``asyncflow.compat.videoflow.core.node.ProcessorNode``.
    """

    def process(self, item: Any) -> Any:
        """Return the result for ``item``."""
        raise NotImplementedError(f"{type(self).__name__} must implement process(item)")
