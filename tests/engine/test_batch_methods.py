"""Nodes with ``next_batch`` / ``process_batch`` / ``consume_batch`` (see ``asyncflow.core.node``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncflow.consumers import VoidConsumer
from asyncflow.core import Flow, NodeFailedError
from asyncflow.core.node import batch_method
from asyncflow.processors import IdentityProcessor
from asyncflow.producers import IntProducer, IterableProducer
from tests.helpers import CountProducer
from tests.helpers_batch import (
    AsyncBatchDouble,
    BatchFailsOnMultiples,
    BatchOnly,
    CollectBatches,
    ListsAndClears,
    PlusOne,
    RangeBatches,
    ReusedListProducer,
    ReusingDoubler,
    ScramblesThenFails,
    TooMany,
    WrongLength,
)
from tests.helpers_blocks import PickleRecorder, kept


def test_batch_method_is_used_only_where_the_class_tree_allows() -> None:
    assert batch_method(IdentityProcessor(), "process") is not None
    assert batch_method(PlusOne(), "process") is None  # overrides process only
    assert batch_method(BatchOnly(), "process") is not None
    assert batch_method(VoidConsumer(), "consume") is not None
    assert batch_method(IntProducer(0, 3), "next") is not None
    assert batch_method(CountProducer(3), "next") is None
    # One set on the instance is the user's own choice, whatever the class defines.
    plus = PlusOne()
    plus.process_batch = lambda xs: [x + 1 for x in xs]  # type: ignore[method-assign]
    assert batch_method(plus, "process") is plus.process_batch
    ident = IdentityProcessor()
    ident.process_batch = ident.process_batch  # type: ignore[method-assign]  # the class's own, bound
    assert batch_method(ident, "process") is not None


def test_looking_for_a_batch_method_keeps_the_nodes_attribute_reads_fast() -> None:
    # vars(node) would turn the node's attributes into a plain dict (slower reads on
    # every item); the same goes for unpickling with __dict__.update.
    import pickle

    node = pickle.loads(pickle.dumps(IntProducer(0, 3)))
    before = _has_plain_dict(node)
    batch_method(node, "next")
    assert not before and not _has_plain_dict(node)


def _has_plain_dict(obj: object) -> bool:
    """Whether ``obj``'s attributes live in a dict of its own (CPython 3.11+: not in the shared-key values)."""
    import gc

    return any(isinstance(r, dict) and r is getattr(obj, "__dict__", None) for r in gc.get_referents(obj))


def test_int_producer_batches_keep_its_meaning() -> None:
    p = IntProducer(5, 12)
    p.open()
    assert p.next_batch(3) == [5, 6, 7]
    assert p.next() == 8
    assert p.next_batch(100) == [9, 10, 11, 12]  # end_value is inclusive
    with pytest.raises(StopIteration):
        p.next_batch(1)
    forever = IntProducer(0, None)
    forever.open()
    assert forever.next_batch(4) == [0, 1, 2, 3]
    paced = IntProducer(0, 10, 0.001)
    paced.open()
    assert paced.next_batch(50) == [0]  # paced: one item a call, each after its wait


def test_iterable_producer_batches() -> None:
    p = IterableProducer(range(5))
    p.open()
    assert p.next_batch(3) == [0, 1, 2]
    assert p.next_batch(3) == [3, 4]
    with pytest.raises(StopIteration):
        p.next_batch(3)


async def test_builtin_batch_nodes_deliver_every_item_in_order(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = IntProducer(0, 99_999)
    b = IdentityProcessor()(a)
    c = CollectBatches(str(out))(b)
    flow = Flow([a], [c])
    await flow.run()
    assert kept(out) == list(range(100_000))
    assert flow.stats()[b.name].processed == 100_000


async def test_a_subclass_overriding_process_gets_its_process_called(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = IntProducer(0, 999)
    b = PlusOne()(a)
    c = PickleRecorder(out)(b)
    await Flow([a], [c]).run()
    assert kept(out) == list(range(1, 1001))


async def test_batch_rows_with_missing_inputs_are_left_out(tmp_path: Path) -> None:
    # Two producers of different lengths: rows past the shorter one lack its item.
    out = tmp_path / "out.pkl"
    a = IterableProducer(range(700))
    b = RangeBatches(1000, chunk=97)
    c = BatchOnly()(a, b)
    d = PickleRecorder(out)(c)
    e = CollectBatches(str(tmp_path / "b.pkl"))(b)
    await Flow([a, b], [d, e]).run()
    assert kept(out) == [2 * i for i in range(700)]
    assert kept(tmp_path / "b.pkl") == list(range(1000))


async def test_async_process_batch_is_awaited(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = IntProducer(0, 4_999)
    b = AsyncBatchDouble()(a)
    c = PickleRecorder(out)(b)
    await Flow([a], [c]).run()
    assert kept(out) == [2 * x for x in range(5_000)]


async def test_a_failing_batch_with_skip_drops_only_the_failing_items(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = IntProducer(0, 2_999)
    b = BatchFailsOnMultiples(1_000, on_error="skip")(a)
    c = PickleRecorder(out)(b)
    flow = Flow([a], [c])
    await flow.run()
    assert kept(out) == [x for x in range(3_000) if x % 1_000]
    assert flow.stats()[b.name].skipped == 3


@pytest.mark.parametrize("nb_tasks", [1, 2])
async def test_lists_a_batch_method_reuses_or_changes_are_sent_as_they_were(tmp_path: Path, nb_tasks: int) -> None:
    # The engine hands a batch method the received lists themselves and sends the
    # lists it returns without copying them first: what was sent must be fixed
    # before the node runs again, whatever it then does to those lists.
    out = tmp_path / "out.pkl"
    a = ReusedListProducer(5_000)
    b = ReusingDoubler(nb_tasks=nb_tasks)(a)
    c = PickleRecorder(out)(b)
    await Flow([a], [c], flow_options={"batch_size": 100, "queue_size": 300}).run()
    assert kept(out) == [2 * x for x in range(5_000)]


@pytest.mark.parametrize("nb_tasks", [1, 2])
async def test_mutable_outputs_of_a_batch_method_that_emptied_its_inputs(tmp_path: Path, nb_tasks: int) -> None:
    # Mutable outputs have their rows frozen one by one, and the next stage running
    # several tasks takes rows, not whole blocks: the node's input list, emptied by
    # the node, must not be read to build those rows.
    out = tmp_path / "out.pkl"
    a = IntProducer(0, 1_999)
    b = ListsAndClears()(a)
    c = IdentityProcessor(nb_tasks=nb_tasks)(b)
    d = PickleRecorder(out)(c)
    await Flow([a], [d]).run()
    assert kept(out) == [[x] for x in range(2_000)]


async def test_a_failing_batch_that_changed_its_inputs_is_rerun_on_the_inputs_as_received(tmp_path: Path) -> None:
    out = tmp_path / "out.pkl"
    a = IntProducer(0, 2_999)
    b = ScramblesThenFails(1_000, on_error="skip")(a)
    c = PickleRecorder(out)(b)
    await Flow([a], [c]).run()
    assert kept(out) == [x for x in range(3_000) if x % 1_000]


async def test_a_failing_batch_stops_the_flow_naming_the_node(tmp_path: Path) -> None:
    a = IntProducer(0, 2_999)
    b = BatchFailsOnMultiples(1_500, name="picky")(a)
    c = VoidConsumer()(b)
    with pytest.raises(NodeFailedError, match="picky") as info:
        await Flow([a], [c]).run()
    assert isinstance(info.value.__cause__, ValueError)


async def test_a_batch_of_the_wrong_length_is_an_error() -> None:
    a = IntProducer(0, 99)
    b = WrongLength(name="short")(a)
    c = VoidConsumer()(b)
    with pytest.raises(NodeFailedError, match=r"short.*process_batch\(\) returned 99 items for 100 inputs"):
        await Flow([a], [c]).run()


async def test_next_batch_returning_more_than_asked_is_an_error() -> None:
    a = TooMany(name="greedy")
    c = VoidConsumer()(a)
    with pytest.raises(NodeFailedError, match=r"greedy.*next_batch\(100\) returned 101 items"):
        await Flow([a], [c], flow_options={"batch_size": 100}).run()


async def test_an_unpicklable_batch_output_is_named() -> None:
    from tests.helpers_batch import UnpicklableBatch

    a = IntProducer(0, 9)
    b = UnpicklableBatch(name="locks")(a)
    c = VoidConsumer()(b)
    with pytest.raises(NodeFailedError, match=r"locks.*cannot be sent"):
        await Flow([a], [c]).run()


@pytest.mark.parametrize("nb_tasks", [1, 2])
async def test_frames_through_a_batch_method_arrive_intact(tmp_path: Path, nb_tasks: int) -> None:
    # IdentityProcessor.process_batch hands back the shared-memory arrays it got;
    # the engine must still send them through its slots, unchanged and in order.
    from tests.helpers_arrays import Digest, FrameProducer, expected_digest

    shape = (480, 640, 3)  # 900 KiB: through shared memory
    out = tmp_path / "digests.txt"
    a = FrameProducer(40, shape)
    b = IdentityProcessor(nb_tasks=nb_tasks)(a)
    c = Digest(str(out))(b)
    await Flow([a], [c]).run()
    got = [line.split() for line in out.read_text().splitlines()]
    assert [int(g[0]) for g in got] == list(range(40))
    for g in got:
        assert (int(g[1]), int(g[2]), g[3]) == expected_digest(int(g[0]), shape, bump=0)


async def test_mutable_values_from_a_batch_method_passed_on_are_fixed_row_by_row(tmp_path: Path) -> None:
    # IterableProducer.next_batch emits lists, pickled as a block without a look at
    # each value; the next node keeps each input and changes it on its next call,
    # while the input also travels on to the consumer: it must arrive as it was
    # when that node returned.
    from tests.helpers_batch import MutatesPrevious

    out = tmp_path / "out.pkl"
    a = IterableProducer([[i] for i in range(2_000)])
    b = MutatesPrevious()(a)
    c = PickleRecorder(out)(a, b)
    await Flow([a], [c]).run()
    assert kept(out) == [([i], 1) for i in range(2_000)]
