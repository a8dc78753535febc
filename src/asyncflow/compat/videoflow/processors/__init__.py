"""videoflow's ``videoflow.processors``: identity, joiner and the running aggregators.

``IdentityProcessor(fps=-1, nb_tasks=1, device_type="cpu")`` and
``JoinerProcessor(fps=-1, ...)`` keep videoflow's arguments (also in :mod:`.basic`);
the aggregators are in :mod:`.aggregators` too, and the vision processors in
:mod:`.vision`.
"""

from __future__ import annotations

from . import aggregators, basic, vision
from .aggregators import CountAggregator, MaxAggregator, MinAggregator, MultiplicationAggregator, SumAggregator
from .basic import IdentityProcessor, JoinerProcessor

__all__ = [
    "CountAggregator",
    "IdentityProcessor",
    "JoinerProcessor",
    "MaxAggregator",
    "MinAggregator",
    "MultiplicationAggregator",
    "SumAggregator",
    "aggregators",
    "basic",
    "vision",
]
