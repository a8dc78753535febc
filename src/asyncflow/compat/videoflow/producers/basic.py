"""videoflow's ``videoflow.producers.basic``: ``IntProducer`` (asyncflow's).

``IntProducer(start_value=0, end_value=None, wait_time_in_seconds=0, fps=-1)``
emits ``start_value`` .. ``end_value`` inclusive (forever when ``end_value`` is
``None``); ``fps > 0`` overrides ``wait_time_in_seconds``.  It sleeps between
items, not after the last one (videoflow slept after each).
"""

from __future__ import annotations

from asyncflow.producers.basic import IntProducer

__all__ = ["IntProducer"]
