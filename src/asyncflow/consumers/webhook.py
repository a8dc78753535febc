"""Webhook consumer: POST each item as JSON to a URL (needs the ``webhook`` extra, httpx)."""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

import httpx

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import ConsumerNode, OnError

__all__ = ["WebhookConsumer"]


def _jsonable(value: Any) -> Any:
    """Encode what ``json`` cannot: numpy arrays and scalars (anything with ``tolist``), sets."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class WebhookConsumer(ConsumerNode):
    """POST each item to ``url`` as a JSON body, and fail on any answer but 2xx.

    An item is the node's input (a JSON list of the inputs when the node has
    several parents); numpy arrays and scalars in it are sent as their
    ``.tolist()``.  ``headers`` are added to every request, ``timeout`` (seconds)
    bounds each one.  An answer outside 2xx raises ``httpx.HTTPStatusError`` naming
    the node and the status; a connection failure raises httpx's ``TransportError``;
    an item JSON cannot encode raises ``TypeError`` naming the node.  The HTTP
    client (one connection pool) is opened by ``open()`` and closed by ``close()``.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(name=name, on_error=on_error)
        owner = self.describe()
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise NodeConfigError(f"{owner}: url must be an http:// or https:// URL, got {url!r}")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, numbers.Real)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise NodeConfigError(f"{owner}: timeout must be a number of seconds > 0, got {timeout!r}")
        if headers is not None and (
            not isinstance(headers, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise NodeConfigError(f"{owner}: headers must be a dict of str to str, got {headers!r}")
        self.url: str = url
        self.timeout: float = float(timeout)
        self.headers: dict[str, str] = dict(headers or {})
        self._client: httpx.Client | None = None

    def open(self) -> None:
        """Open the HTTP client."""
        self._client = httpx.Client(timeout=self.timeout, headers=self.headers)

    def consume(self, *inputs: Any) -> None:
        """POST the item as JSON; raise on a non-2xx answer."""
        if self._client is None:
            raise RuntimeError(f"{self.describe()}: consume() was called before open(); call open() first")
        item = inputs[0] if len(inputs) == 1 else list(inputs)
        try:
            body = json.dumps(item, default=_jsonable)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{self.describe()} cannot send {type(item).__name__} item {item!r:.200} as JSON: {exc}"
            ) from exc
        response = self._client.post(self.url, content=body, headers={"Content-Type": "application/json"})
        if not response.is_success:
            raise httpx.HTTPStatusError(
                f"{self.describe()}: POST {self.url} answered {response.status_code} {response.reason_phrase}: "
                f"{response.text[:200]!r}",
                request=response.request,
                response=response,
            )

    def close(self) -> None:
        """Close the HTTP client."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_client"] = None  # a client does not pickle; open() makes one in the new process
        return state
