"""The local engine: a parent scheduler, one process per task, socket channels."""

from .scheduler import LocalScheduler

__all__ = ["LocalScheduler"]
