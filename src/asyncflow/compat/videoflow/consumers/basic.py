"""videoflow's ``videoflow.consumers.basic``: the command-line, void, webhook and file consumers.

- ``CommandlineConsumer(sep=" ", end="\\n")`` and ``VoidConsumer()``: asyncflow's.
- ``WebhookConsumer(host, method="post")``: asyncflow's webhook consumer (needs the
  ``webhook`` extra, httpx; imported on first use) under videoflow's argument
  names.  It POSTs each item as a JSON body and raises on an answer outside 2xx;
  videoflow parsed each item with ``json.loads`` and posted the result
  form-encoded.  Only ``method="post"`` exists, as in videoflow's code.
- ``FileAppenderConsumer(path)``: asyncflow's, which appends each item to a file
  (videoflow's took no path and raised ``NotImplementedError``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from asyncflow.consumers.basic import CommandlineConsumer, FileAppenderConsumer, VoidConsumer

if TYPE_CHECKING:
    from ._webhook import WebhookConsumer

__all__ = ["CommandlineConsumer", "FileAppenderConsumer", "VoidConsumer", "WebhookConsumer"]


def __getattr__(name: str) -> Any:
    if name == "WebhookConsumer":
        return importlib.import_module(f"{__package__}._webhook").WebhookConsumer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
