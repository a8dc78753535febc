"""``FeedProducer``: a producer the application feeds with ``await node.put(x)``."""

from asyncflow.core.host import FeedClosedError, FeedProducer

__all__ = ["FeedClosedError", "FeedProducer"]
