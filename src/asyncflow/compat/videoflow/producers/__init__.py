"""videoflow's ``videoflow.producers``: ``IntProducer`` and ``VideofileReader``, and the submodules.

``IntProducer(start_value=0, end_value=None, wait_time_in_seconds=0, fps=-1)``
emits ``start_value`` .. ``end_value`` inclusive, as in videoflow (it sleeps
between items, not after the last one).  ``VideofileReader`` is the video file
reader of :mod:`.video`, which holds videoflow's other readers; it needs the
``video`` extra (OpenCV) and is imported on first use, as is ``video`` itself.
:mod:`.basic` holds ``IntProducer``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import basic
from .basic import IntProducer

if TYPE_CHECKING:
    from . import video
    from .video import VideofileReader

__all__ = ["IntProducer", "VideofileReader", "basic", "video"]


def __getattr__(name: str) -> Any:
    if name == "video":
        return importlib.import_module(f"{__name__}.video")
    if name == "VideofileReader":
        return importlib.import_module(f"{__name__}.video").VideofileReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
