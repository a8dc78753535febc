"""The facade's ``WebhookConsumer``: asyncflow's, under videoflow's argument names (needs httpx)."""

from __future__ import annotations

from collections.abc import Mapping

from asyncflow.consumers import webhook as _webhook
from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import OnError

__all__ = ["WebhookConsumer"]


class WebhookConsumer(_webhook.WebhookConsumer):
    """POST each item as JSON to ``host`` (a URL): videoflow's ``WebhookConsumer(host, method="post")``.

    ``method`` may only be ``"post"`` (any case), the one videoflow implemented;
    another raises ``NodeConfigError`` (a ``ValueError``).  asyncflow's keyword-only
    ``timeout``, ``headers``, ``name`` and ``on_error`` are accepted too.
    """

    def __init__(
        self,
        host: str,
        method: str = "post",
        *,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        on_error: OnError = "raise",
    ) -> None:
        if not isinstance(method, str) or method.lower() != "post":
            raise NodeConfigError(
                f"{type(self).__name__}: method must be 'post' (the only one videoflow sent), got {method!r}"
            )
        super().__init__(host, timeout=timeout, headers=headers, name=name, on_error=on_error)
        self.host = self.url
        self.method = "post"
