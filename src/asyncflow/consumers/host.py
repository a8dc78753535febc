"""``ResultsConsumer``: hand a flow's items back to the application that runs it."""

from asyncflow.core.host import ResultsConsumer

__all__ = ["ResultsConsumer"]
