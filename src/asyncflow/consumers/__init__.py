"""Built-in consumers: the sinks of a flow.

``VideofileWriter`` needs the ``video`` extra (OpenCV, numpy) and ``WebhookConsumer``
the ``webhook`` extra (httpx); both are imported on first use, so
``import asyncflow.consumers`` imports neither dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncflow._lazy import lazy_exports

from .basic import CommandlineConsumer, FileAppenderConsumer, VoidConsumer
from .host import ResultsConsumer

if TYPE_CHECKING:
    from .video import VideofileWriter
    from .webhook import WebhookConsumer

__all__ = [
    "CommandlineConsumer",
    "FileAppenderConsumer",
    "ResultsConsumer",
    "VideofileWriter",
    "VoidConsumer",
    "WebhookConsumer",
]

__getattr__ = lazy_exports(
    __name__, {"VideofileWriter": "asyncflow.consumers.video", "WebhookConsumer": "asyncflow.consumers.webhook"}
)
