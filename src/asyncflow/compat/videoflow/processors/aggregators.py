"""videoflow's ``videoflow.processors.aggregators``: running sum, product, count, max and min.

Each is a one-task processor whose value restarts when the node is opened.  One
difference: before the first item, ``MaxAggregator`` / ``MinAggregator`` hold no
value (videoflow started them at ``-inf`` / ``inf``); the first item is always the
first result, so what they return is the same.
"""

from __future__ import annotations

from asyncflow.processors.aggregators import (
    CountAggregator,
    MaxAggregator,
    MinAggregator,
    MultiplicationAggregator,
    SumAggregator,
)

__all__ = ["CountAggregator", "MaxAggregator", "MinAggregator", "MultiplicationAggregator", "SumAggregator"]
