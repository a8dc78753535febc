"""Built-in consumers: the sinks of a flow.

``VideofileWriter`` and ``PreviewConsumer`` (the newest frame as JPEG, for
``asyncflow.monitor.WebView``) need the ``video`` extra (OpenCV, numpy) and
``WebhookConsumer`` the ``webhook`` extra (httpx); they are imported on first use,
so ``import asyncflow.consumers`` imports none of these dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncflow._lazy import lazy_exports

from .basic import CommandlineConsumer, FileAppenderConsumer, VoidConsumer
from .host import ResultsConsumer

if TYPE_CHECKING:
    from .preview import PreviewConsumer
    from .video import VideofileWriter
    from .webhook import WebhookConsumer

__all__ = [
    "CommandlineConsumer",
    "FileAppenderConsumer",
    "PreviewConsumer",
    "ResultsConsumer",
    "VideofileWriter",
    "VoidConsumer",
    "WebhookConsumer",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "PreviewConsumer": "asyncflow.consumers.preview",
        "VideofileWriter": "asyncflow.consumers.video",
        "WebhookConsumer": "asyncflow.consumers.webhook",
    },
)
