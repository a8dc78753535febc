"""The pipe pair between two tasks (``asyncflow.engine.pipes``) under a ``Link``."""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import Callable

from asyncflow.engine import wire
from asyncflow.engine.channel import connect
from asyncflow.engine.pipes import pipe_pair


def test_a_pipe_end_closes_both_descriptors_once() -> None:
    a, b = pipe_pair()
    fds = (a.read_fd, a.write_fd)
    a.close()
    a.close()
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError:
            continue
        raise AssertionError(f"fd {fd} still open")
    b.close()


def test_a_pipe_end_pickles_its_descriptors() -> None:
    # Outside a process start multiprocessing shares them through its resource sharer.
    a, b = pipe_pair()
    try:
        copy = pickle.loads(pickle.dumps(a))
        assert copy.read_fd >= 0 and copy.write_fd >= 0
        assert (copy.read_fd, copy.write_fd) != (a.read_fd, a.write_fd)
        os.write(b.write_fd, b"x")
        assert os.read(copy.read_fd, 1) == b"x"
        copy.close()
    finally:
        a.close()
        b.close()


async def test_links_over_pipes_carry_frames_both_ways_and_end_when_the_peer_closes() -> None:
    a_end, b_end = pipe_pair()
    a = await connect(a_end, "a")
    b = await connect(b_end, "b")
    a.send_message(("to b", 1))
    b.send_message(("to a", 2))
    await _until(lambda: bool(a.messages and b.messages))
    assert list(b.messages) == [("to b", 1)]
    assert list(a.messages) == [("to a", 2)]
    a.send_message(("last", 3))
    a.write(wire.frame(wire.STOP))
    a.close()  # what a wrote before closing is still read by b
    await _until(lambda: b.eof)
    assert list(b.messages) == [("to b", 1), ("last", 3)]
    assert b.stopped and b.eof
    assert await b.wait_closed(5)
    b.close()
    assert await a.wait_closed(5)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")
