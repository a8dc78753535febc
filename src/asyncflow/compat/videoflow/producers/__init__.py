"""videoflow's ``videoflow.producers``: ``IntProducer`` and ``VideofileReader``.

``IntProducer(start_value=0, end_value=None, wait_time_in_seconds=0, fps=-1)``
emits ``start_value`` .. ``end_value`` inclusive, as in videoflow (it sleeps
between items, not after the last one).  ``VideofileReader`` is asyncflow's video
reader (``asyncflow.producers``); it needs the ``video`` extra (OpenCV) and is
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from asyncflow.producers import IntProducer

__all__ = ["IntProducer", "VideofileReader"]

_FORWARDED = {"VideofileReader": "asyncflow.producers"}


def __getattr__(name: str) -> Any:
    module = _FORWARDED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
