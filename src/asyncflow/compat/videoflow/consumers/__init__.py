"""videoflow's ``videoflow.consumers``: ``CommandlineConsumer``, ``VoidConsumer`` and ``VideofileWriter``.

``CommandlineConsumer(sep=" ", end="\\n")`` prints each item (and flushes: it runs
in its own process).  ``VideofileWriter`` is asyncflow's (``asyncflow.consumers``);
it needs the ``video`` extra (OpenCV) and is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from asyncflow.consumers import CommandlineConsumer, VoidConsumer

__all__ = ["CommandlineConsumer", "VideofileWriter", "VoidConsumer"]

_FORWARDED = {"VideofileWriter": "asyncflow.consumers"}


def __getattr__(name: str) -> Any:
    module = _FORWARDED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
