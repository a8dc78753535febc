"""Aggregators: processors that return a running value (sum, product, count, max, min)."""

from __future__ import annotations

from typing import Any

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import Node, OnError

from .onetask import OneTaskProcessorNode

__all__ = ["CountAggregator", "MaxAggregator", "MinAggregator", "MultiplicationAggregator", "SumAggregator"]


class _Aggregator(OneTaskProcessorNode):
    """Shared shape of the aggregators: one parent, one task, a value reset by ``open()``."""

    def __init__(self, *, name: str | None = None, on_error: OnError = "raise") -> None:
        super().__init__(name=name, on_error=on_error)
        self._reset()

    def _reset(self) -> None:
        raise NotImplementedError

    def open(self) -> None:
        """Start the running value again, so each run aggregates its own items."""
        self._reset()

    def __call__(self, *parents: Node) -> Any:
        if len(parents) > 1:
            raise NodeConfigError(
                f"{self.describe()} aggregates one stream and takes one parent, got {len(parents)}; "
                "join them first (JoinerProcessor) or use one aggregator per parent"
            )
        return super().__call__(*parents)

    def _one(self, inputs: tuple[Any, ...]) -> Any:
        if len(inputs) != 1:
            raise TypeError(f"{self.describe()}: process() takes one input, got {len(inputs)}")
        return inputs[0]


class SumAggregator(_Aggregator):
    """Return the running sum of the items seen so far, this one included."""

    def _reset(self) -> None:
        """Start again from 0."""
        self._sum: Any = 0

    def process(self, *inputs: Any) -> Any:
        """Add the item to the running sum and return the sum."""
        self._sum = self._sum + self._one(inputs)
        return self._sum


class MultiplicationAggregator(_Aggregator):
    """Return the running product of the items seen so far, this one included."""

    def _reset(self) -> None:
        """Start again from 1."""
        self._product: Any = 1

    def process(self, *inputs: Any) -> Any:
        """Multiply the running product by the item and return the product."""
        self._product = self._product * self._one(inputs)
        return self._product


class CountAggregator(_Aggregator):
    """Return how many items were seen so far, this one included (1, 2, 3...)."""

    def _reset(self) -> None:
        """Start again from 0."""
        self._count = 0

    def process(self, *inputs: Any) -> int:
        """Count the item and return the count."""
        self._one(inputs)
        self._count += 1
        return self._count


class MaxAggregator(_Aggregator):
    """Return the largest item seen so far, this one included (any items that compare with ``>``)."""

    def _reset(self) -> None:
        """Forget the items seen."""
        self._seen = False
        self._max: Any = None

    def process(self, *inputs: Any) -> Any:
        """Return the running maximum, the item included."""
        item = self._one(inputs)
        if not self._seen or item > self._max:
            self._max = item
            self._seen = True
        return self._max


class MinAggregator(_Aggregator):
    """Return the smallest item seen so far, this one included (any items that compare with ``<``)."""

    def _reset(self) -> None:
        """Forget the items seen."""
        self._seen = False
        self._min: Any = None

    def process(self, *inputs: Any) -> Any:
        """Return the running minimum, the item included."""
        item = self._one(inputs)
        if not self._seen or item < self._min:
            self._min = item
            self._seen = True
        return self._min
