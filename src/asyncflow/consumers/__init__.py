"""Built-in consumers: the sinks of a flow."""

from __future__ import annotations

from .basic import CommandlineConsumer, FileAppenderConsumer, VoidConsumer

__all__ = ["CommandlineConsumer", "FileAppenderConsumer", "VoidConsumer"]
