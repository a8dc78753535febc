"""``Sender`` and ``Receiver`` in one process, over real pipes: credit, order, REALTIME, birth times, ends.

No task process is started: these pin the channel's own rules (what whole flows
exercise only together with everything else).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from asyncflow.core.constants import STOP_FLOW
from asyncflow.engine.channel import Block, BrokenChannelError, Link, Receiver, Sender, connect
from asyncflow.engine.pipes import pipe_pair


async def _links(n: int = 1) -> tuple[list[Link], list[Link]]:
    """``n`` channels: the sending ends and the receiving ends."""
    out: list[Link] = []
    into: list[Link] = []
    for i in range(n):
        a, b = pipe_pair()
        out.append(await connect(a, f"out{i}"))
        into.append(await connect(b, f"in{i}"))
    return out, into


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def _sender(links: list[Link], **kwargs: object) -> Sender:
    settings: dict[str, object] = {"queue_size": 4, "batch_size": 1, "flush_interval": 0.001, "max_bytes": 1 << 20}
    settings.update(kwargs)
    return Sender(links, **settings)  # type: ignore[arg-type]


async def _rows(receiver: Receiver) -> list[object]:
    got = []
    while (row := await receiver.recv()) is not STOP_FLOW:
        got.append(row)
    return got


def _close(*groups: list[Link]) -> None:
    for links in groups:
        for link in links:
            link.close()


async def test_batch_credit_holds_a_sender_at_queue_size_until_the_receiver_takes() -> None:
    out, into = await _links()
    sender = _sender(out, queue_size=4)
    receiver = Receiver(into, queue_size=4, max_bytes=1 << 20)
    send = asyncio.ensure_future(sender.send_many([(i,) for i in range(10)]))
    await _until(lambda: into[0].queued == 4)
    await asyncio.sleep(0.05)
    assert not send.done() and into[0].queued == 4, "no more than queue_size unacknowledged"
    got = [receiver.recv_nowait() for _ in range(4)]
    assert got == [(0,), (1,), (2,), (3,)]
    rest = asyncio.ensure_future(_rows(receiver))  # the node takes again: the sender goes on
    await send
    await sender.send_stop()
    assert [r[0] for r in await rest] == list(range(4, 10))  # type: ignore[index]
    _close(out, into)
    sender.close()
    receiver.close()


async def test_realtime_keeps_the_newest_and_sends_again_only_when_the_node_asks() -> None:
    out, into = await _links()
    sender = _sender(out, queue_size=1, realtime=True, target="node")
    receiver = Receiver(into, queue_size=1, max_bytes=1 << 20, pull=True)
    await sender.send_many([(0,)], born=1.0, newest=1.0)
    await _until(lambda: into[0].queued == 1)
    block = receiver.take_block(1)  # the node starts on item 0 ...
    assert block is not None and block.cols == ((0,),) and block.born == 1.0
    for i in range(1, 6):  # ... while 5 more come: the leaky queue keeps the newest
        await sender.send_many([(i,)], born=1.0 + i, newest=1.0 + i)
    await asyncio.sleep(0.05)
    assert into[0].queued == 0, "nothing is sent while the node works"
    assert sender.dropped == 4
    empty = receiver.take_block(1)  # the node is free: asks, gets the newest
    assert empty is not None and empty.n == 0
    await _until(lambda: into[0].queued == 1)
    block = receiver.take_block(1)
    assert block is not None and block.cols == ((5,),) and block.born == 6.0
    await sender.send_stop()
    assert await _rows(receiver) == []
    _close(out, into)
    sender.close()
    receiver.close()


async def test_realtime_sender_hands_the_next_row_to_whichever_worker_is_free() -> None:
    out, into = await _links(2)
    sender = _sender(out, queue_size=1, realtime=True)
    workers = [Receiver([link], queue_size=1, max_bytes=1 << 20, pull=True) for link in into]
    await sender.send_many([(0,)])
    await sender.send_many([(1,)])
    await _until(lambda: into[0].queued == 1 and into[1].queued == 1)
    first = workers[1].take_block(1)  # worker 1 starts; worker 0 stays busy with its row
    assert first is not None and first.n == 1
    workers[1].take_block(1)  # worker 1 is free again and asks
    await sender.send_many([(2,)])
    await _until(lambda: into[1].queued == 1)
    assert into[0].queued == 1, "the busy worker got nothing more"
    await sender.send_stop()
    _close(out, into)
    sender.close()


async def test_rows_of_workers_that_come_back_out_of_capture_order_are_dropped_and_counted() -> None:
    out, into = await _links(2)
    senders = [_sender([link], queue_size=8) for link in out]
    receiver = Receiver(into, queue_size=8, max_bytes=1 << 20, positional=False, pull=True, order_of="det")
    await senders[0].send_block(Block((["a"],), 1, 8, True, True, born=2.0, newest=2.0))
    await _until(lambda: into[0].queued == 1)
    assert receiver.recv_nowait() == ("a",)
    await senders[1].send_block(Block((["late"],), 1, 8, True, True, born=1.0, newest=1.0))  # born before "a"
    await senders[1].send_block(Block((["b"],), 1, 8, True, True, born=3.0, newest=3.0))
    for s in senders:
        await s.send_stop()
    assert await _rows(receiver) == [("b",)]
    assert receiver.order_dropped == 1
    _close(out, into)


async def test_an_ordered_stream_cut_by_a_vanished_worker_delivers_an_in_order_prefix() -> None:
    out, into = await _links(2)
    senders = [_sender([link], queue_size=64, first=w, step=2) for w, link in enumerate(out)]
    receiver = Receiver(into, queue_size=64, max_bytes=1 << 20, positional=True)
    await senders[0].send_many([(0,), (2,), (4,)])  # worker 0: rows 0, 2, 4
    await senders[1].send_many([(1,)])  # worker 1 had row 1, then died before row 3
    await senders[0].send_stop()
    for s in senders:
        s.flush()
    out[1].close()
    assert await _rows(receiver) == [(0,), (1,), (2,)]
    assert receiver.discarded == 1  # row 4 came after the gap
    _close(out, into)


async def test_a_sender_whose_receiver_is_gone_raises_broken_channel() -> None:
    out, into = await _links()
    sender = _sender(out, queue_size=2)
    _close(into)
    await _until(lambda: out[0].eof)
    with pytest.raises(BrokenChannelError):
        await sender.send_many([(i,) for i in range(10)])
    _close(out)


async def test_birth_times_of_merged_frames_are_the_oldest_and_the_youngest() -> None:
    out, into = await _links()
    sender = _sender(out, queue_size=64, batch_size=8)
    receiver = Receiver(into, queue_size=64, max_bytes=1 << 20)
    await sender.send_block(Block(([1, 2],), 2, 16, True, True, born=5.0, newest=6.0))
    await sender.send_block(Block(([3],), 1, 8, True, True, born=4.0, newest=4.5))
    sender.flush()
    await _until(lambda: into[0].queued == 3)
    block = receiver.take_block(8)
    assert block is not None and list(block.cols[0]) == [1, 2, 3]
    assert (block.born, block.newest) == (4.0, 6.0)
    await sender.send_stop()
    _close(out, into)
