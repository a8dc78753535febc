"""Batch methods on both engines (the Ray engine calls them once a batch, as the local engine does)."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path
from typing import Any

import pytest

from asyncflow.core import Flow, NodeFailedError
from tests.helpers import CountProducer, Pair
from tests.helpers_batch import (
    CollectBatches,
    ListsAndClears,
    RangeBatches,
    ReusedListProducer,
    ReusingDoubler,
    ScramblesThenFails,
    WrongLength,
)

ray = pytest.importorskip("ray")

OPTIONS = {"batch_size": 16, "queue_size": 64}


def collected(path: Path) -> Any:
    with open(path, "rb") as file:
        return pickle.load(file)


async def test_batch_methods_reused_lists_and_skips(engine: str, tmp_path: Path) -> None:
    """Reused output and input lists, lists as items, a batch that raises with skip (run again item by
    item, on the inputs as they came, not as the batch method left them), a next_batch producer zipped."""
    outs = [tmp_path / f"{i}.pkl" for i in range(2)]
    a = ReusedListProducer(100)
    doubled = ReusingDoubler()(a)
    c0 = CollectBatches(str(outs[0]))(ListsAndClears()(ScramblesThenFails(9, on_error="skip")(doubled)))
    r = RangeBatches(40, chunk=3)
    c1 = CollectBatches(str(outs[1]))(Pair()(a, r))
    flow = Flow([a, r], [c0, c1], flow_options={"engine": engine, **OPTIONS})
    await asyncio.wait_for(flow.run(), 60)
    assert collected(outs[0]) == [[2 * i] for i in range(100) if (2 * i) % 9]
    assert collected(outs[1]) == [(i, i) for i in range(40)]


async def test_a_batch_method_that_breaks_its_contract_names_the_node(engine: str, tmp_path: Path) -> None:
    a = CountProducer(10)
    c = CollectBatches(str(tmp_path / "out.pkl"))(WrongLength(name="short")(a))
    with pytest.raises(NodeFailedError, match="short") as info:
        await asyncio.wait_for(Flow([a], [c], flow_options={"engine": engine}).run(), 60)
    assert "returned 9 items for 10 inputs" in str(info.value)
