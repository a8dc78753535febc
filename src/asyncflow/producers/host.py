"""``FeedProducer``: a producer the application feeds with ``await node.put(x)``."""

from asyncflow.core.host import FeedProducer

__all__ = ["FeedProducer"]
