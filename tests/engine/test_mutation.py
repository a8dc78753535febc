"""A node may mutate what it receives: no other node ever sees the change.

Siblings on a fan-out get their own copies (each branch is frozen on its own), and in
a diamond (A -> P, (A, P) -> D) a node that also passes its input on gets a private
copy of a mutable value, while a node that alone reads a value gets it without a copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncflow.core import Flow
from tests.helpers import Recorder, recorded
from tests.helpers_arrays import Brighten, Digest, FrameProducer, PairDigest, expected_digest
from tests.helpers_live import Lists, Mutate

SHAPE = (360, 640, 3)  # 675 KiB: through shared memory


async def test_diamond_with_lists(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = Lists(40)
    m = Mutate()(a)
    d = Recorder(out)(a, m)
    await Flow([a], [d]).run()
    assert recorded(out) == [[[i] * 4, [-1] * 4] for i in range(40)]


@pytest.mark.parametrize("nb_tasks", [1, 2])
async def test_diamond_with_big_arrays(tmp_path: Path, nb_tasks: int) -> None:
    out = tmp_path / "out.txt"
    a = FrameProducer(12, SHAPE)
    b = Brighten(nb_tasks=nb_tasks)(a)
    d = PairDigest(str(out))(a, b)
    await Flow([a], [d]).run()
    lines = [line.split() for line in out.read_text().splitlines()]
    assert [int(index) for index, _, _ in lines] == list(range(12))
    for index, first, second in lines:
        assert first == expected_digest(int(index), SHAPE, 0)[2]
        assert second == expected_digest(int(index), SHAPE, 1)[2]


async def test_fan_out_with_big_arrays_listed_either_way(tmp_path: Path) -> None:
    for flip in (False, True):
        plain_out, bright_out = tmp_path / f"plain{flip}.txt", tmp_path / f"bright{flip}.txt"
        a = FrameProducer(12, SHAPE)
        bright = Digest(str(bright_out))(Brighten()(a))
        plain = Digest(str(plain_out))(a)
        await Flow([a], [plain, bright] if flip else [bright, plain]).run()
        for path, bump in ((plain_out, 0), (bright_out, 1)):
            got = [line.split() for line in path.read_text().splitlines()]
            assert [(int(v0), int(v1), sha) for _, v0, v1, sha in got] == [
                expected_digest(i, SHAPE, bump) for i in range(12)
            ]
