"""videoflow's ``videoflow.processors``: identity, joiner and the running aggregators.

``IdentityProcessor(fps=-1, nb_tasks=1, device_type="cpu")`` and
``JoinerProcessor(fps=-1, ...)`` keep videoflow's arguments; the aggregators are
in :mod:`.aggregators` too, and the vision processors in :mod:`.vision`.
"""

from __future__ import annotations

from asyncflow.processors.basic import IdentityProcessor, JoinerProcessor

from . import aggregators, vision
from .aggregators import CountAggregator, MaxAggregator, MinAggregator, MultiplicationAggregator, SumAggregator

__all__ = [
    "CountAggregator",
    "IdentityProcessor",
    "JoinerProcessor",
    "MaxAggregator",
    "MinAggregator",
    "MultiplicationAggregator",
    "SumAggregator",
    "aggregators",
    "vision",
]
