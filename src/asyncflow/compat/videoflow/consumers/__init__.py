"""videoflow's ``videoflow.consumers``: ``CommandlineConsumer``, ``VoidConsumer`` and ``VideofileWriter``.

``CommandlineConsumer(sep=" ", end="\\n")`` prints each item (and flushes: it runs
in its own process).  ``VideofileWriter`` is the writer of :mod:`.video` (videoflow's
defaults: ``swap_channels=True``); it needs the ``video`` extra (OpenCV) and is
imported on first use, as is ``video``.  :mod:`.basic` also holds
``WebhookConsumer`` and ``FileAppenderConsumer``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import basic
from .basic import CommandlineConsumer, VoidConsumer

if TYPE_CHECKING:
    from . import video
    from .video import VideofileWriter

__all__ = ["CommandlineConsumer", "VideofileWriter", "VoidConsumer", "basic", "video"]


def __getattr__(name: str) -> Any:
    if name == "video":
        return importlib.import_module(f"{__name__}.video")
    if name == "VideofileWriter":
        return importlib.import_module(f"{__name__}.video").VideofileWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
