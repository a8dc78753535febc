"""Built-in processors: the transformations of a flow."""

from __future__ import annotations

from .aggregators import (
    CountAggregator,
    MaxAggregator,
    MinAggregator,
    MultiplicationAggregator,
    SumAggregator,
)
from .basic import FunctionProcessor, FunctionProcessorNode, IdentityProcessor, JoinerProcessor
from .onetask import OneTaskProcessorNode

__all__ = [
    "CountAggregator",
    "FunctionProcessor",
    "FunctionProcessorNode",
    "IdentityProcessor",
    "JoinerProcessor",
    "MaxAggregator",
    "MinAggregator",
    "MultiplicationAggregator",
    "OneTaskProcessorNode",
    "SumAggregator",
]
