"""The hot path: rows travel as column blocks and nodes are called a chunk at a time.

What must hold whatever the values: every item arrives, in order, as it was when
the node returned it; a failure or a skipped item in the middle of a chunk
keeps the rows around it; a slow source's items are not held back by batching.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncflow.core import Flow, NodeFailedError
from asyncflow.processors import IdentityProcessor
from tests.helpers import CountProducer, FailAt
from tests.helpers_blocks import (
    FailEvery,
    First,
    ListProducer,
    MixedProducer,
    PickleRecorder,
    ReturnsCoroutine,
    ReuseEvery,
    ReuseInTuple,
    StampProducer,
    kept,
    mixed_value,
)


async def test_values_of_every_kind_arrive_in_order_and_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    n = 3000  # enough for chunks to grow to a whole batch
    a = MixedProducer(n)
    b = IdentityProcessor()(a)
    c = PickleRecorder(out)(b)
    await Flow([a], [c]).run()
    got = kept(out)
    expected = [mixed_value(i) for i in range(n)]
    assert got == expected
    assert [type(x) for x in got] == [type(x) for x in expected]


async def test_a_reused_buffer_returned_mid_chunk_is_fixed_when_returned(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = CountProducer(2000)
    b = ReuseEvery(7)(a)
    c = PickleRecorder(out)(b)
    await Flow([a], [c]).run()
    assert kept(out) == [[x] if x % 7 == 0 else x for x in range(2000)]


async def test_a_reused_buffer_inside_a_returned_tuple_is_fixed_too(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = CountProducer(1000)
    b = ReuseInTuple()(a)
    c = PickleRecorder(out)(b)
    await Flow([a], [c]).run()
    assert kept(out) == [(x, "odd") if x % 2 else (x, [x]) for x in range(1000)]


async def test_rows_holding_mutable_values_pass_through_a_stage(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = ListProducer(1500)
    b = First()(a)
    c = PickleRecorder(out)(a, b)  # the list travels through b's task next to b's value
    await Flow([a], [c]).run()
    assert kept(out) == [([i], i) for i in range(1500)]


async def test_a_failure_deep_in_a_stream_keeps_every_row_before_it(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = CountProducer(10_000)
    b = FailAt(6_543)(a)
    c = PickleRecorder(out)(b)
    with pytest.raises(NodeFailedError, match="boom at 6543"):
        await Flow([a], [c]).run()
    assert kept(out) == list(range(6_543))


async def test_skipped_items_in_the_middle_of_chunks_leave_the_rest_in_order(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = CountProducer(5_000)
    b = FailEvery(97, on_error="skip")(a)
    c = PickleRecorder(out)(b)
    flow = Flow([a], [c])
    await flow.run()
    assert kept(out) == [x for x in range(5_000) if x % 97]
    assert flow.stats()[b.name].skipped == len(range(0, 5_000, 97))


async def test_a_coroutine_returned_by_a_plain_method_is_awaited(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = CountProducer(1_000)
    b = ReturnsCoroutine()(a)
    c = PickleRecorder(out)(b)
    await Flow([a], [c]).run()
    assert kept(out) == [2 * x for x in range(1_000)]


async def test_a_slow_sources_items_are_not_held_back(tmp_path: Path) -> None:
    # The producer sleeps 0.2 s before each item: batching must not keep an item
    # waiting for the next one.  Latency is measured from the producer's stamp.
    out = tmp_path / "out.pkl"
    a = StampProducer(5, 0.2)
    b = IdentityProcessor()(a)
    c = PickleRecorder(out, latency=True)(b)
    await Flow([a], [c]).run()
    latencies = kept(out)
    assert len(latencies) == 5
    assert max(latencies) < 0.15, latencies


@pytest.mark.parametrize(("first", "second"), [(2, 1), (3, 2), (1, 3)])
async def test_blocks_split_over_workers_and_back_keep_order(tmp_path: Path, first: int, second: int) -> None:
    # Rows to nb_tasks workers go as every-Nth-row blocks; the next task interleaves
    # them back.  Enough rows for many blocks, through two parallel stages in a row.
    from asyncflow.producers import IntProducer
    from tests.helpers import Add

    out = tmp_path / "out.pkl"
    a = IntProducer(0, 49_999)
    b = IdentityProcessor(nb_tasks=first)(a)
    c = Add(1, nb_tasks=second)(b)
    d = PickleRecorder(out)(a, c)
    flow = Flow([a], [d])
    await flow.run()
    assert kept(out) == [(i, i + 1) for i in range(50_000)]
    if first > 1:
        shares = [s.processed for name, s in flow.stats().items() if name.startswith(b.name + "[")]
        assert len(shares) == first and all(shares), shares
