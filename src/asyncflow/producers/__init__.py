"""Built-in producers: the sources of a flow."""

from __future__ import annotations

from .basic import IntProducer, IterableProducer

__all__ = ["IntProducer", "IterableProducer"]
