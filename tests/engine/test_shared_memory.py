"""Big numpy arrays travel through shared-memory slots, intact and never lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asyncflow.core import REALTIME, Flow
from tests.helpers_arrays import Brighten, Digest, FrameProducer, expected_digest

np = pytest.importorskip("numpy")
SHAPE = (360, 640, 3)  # 691 200 bytes: above the shared-memory threshold


def digests(path: Path) -> list[tuple[int, int, int, str]]:
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(int(i), int(a), int(b), d) for i, a, b, d in rows]


def shm_segments() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.mark.parametrize("nb_tasks", [1, 2])
async def test_frames_from_a_reused_buffer_arrive_intact_and_in_order(tmp_path: Path, nb_tasks: int) -> None:
    out = tmp_path / "digests.txt"
    before = shm_segments()
    a = FrameProducer(60, SHAPE)
    b = Brighten(nb_tasks=nb_tasks)(a)
    c = Digest(str(out))(b)
    await Flow([a], [c]).run()
    got = digests(out)
    assert [g[0] for g in got] == list(range(60))
    for index, v0, v1, digest in got:
        assert (v0, v1, digest) == expected_digest(index, SHAPE, bump=1), f"frame {index} was changed"
    assert shm_segments() - before == set(), "every slot is unlinked at the end"


async def test_realtime_drops_give_their_slots_back(tmp_path: Path) -> None:
    from tests.helpers import Sleepy

    out = tmp_path / "digests.txt"
    before = shm_segments()
    a = FrameProducer(200, SHAPE)
    b = Sleepy(0.01)(a)
    c = Digest(str(out))(b)
    flow = Flow([a], [c], flow_type=REALTIME, flow_options={"queue_size": 4})
    await flow.run()
    got = digests(out)
    assert flow.stats()[a.name].dropped > 0
    assert len(got) + flow.stats()[a.name].dropped == 200
    for index, v0, v1, digest in got:
        assert (v0, v1, digest) == expected_digest(index, SHAPE, bump=0)
    assert shm_segments() - before == set()
