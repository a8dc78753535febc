"""``asyncflow.Pool``: flows on warm processes keep every guarantee of ``run()``.

The second half re-runs the engine's end-to-end tests (``test_run``)
with every ``Flow.run()`` going through a pool, as the Ray tests run both engines.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import asyncflow
from asyncflow.core import Flow, FlowKilledError, NodeFailedError, WorkerDiedError
from tests.helpers import CountProducer, FailAt, Recorder, recorded
from tests.helpers_pool import Stuck, WhereAmI, where


async def _until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def _flow(tmp_path: Path, n: int = 50, tag: str = "") -> tuple[Flow, Path, Path]:
    out, log = tmp_path / f"out{tag}.jsonl", tmp_path / f"where{tag}.jsonl"
    a = CountProducer(n)
    b = WhereAmI(str(log))(a)
    c = Recorder(out)(b)
    return Flow([a], [c]), out, log


async def test_flows_reuse_the_same_warm_processes(tmp_path: Path) -> None:
    async with asyncflow.Pool(3) as pool:
        pids = []
        for i in range(3):
            flow, out, log = _flow(tmp_path, tag=str(i))
            await flow.run(pool=pool)
            assert recorded(out) == list(range(50))
            pids.append(where(log)[0]["pid"])
        assert len(set(pids)) <= 3 and pool.size == 3
        assert pids[0] != os.getpid()
        # The task's log handler went with the task: none piles up in a warm process.
        assert len({tuple(r.values()) for i in range(3) for r in where(tmp_path / f"where{i}.jsonl")}) <= 3


async def test_concurrent_flows_each_get_their_own_processes(tmp_path: Path) -> None:
    async with asyncflow.Pool(2) as pool:
        flows = [_flow(tmp_path, n=2000, tag=str(i)) for i in range(3)]
        await asyncio.gather(*(flow.run(pool=pool) for flow, _, _ in flows))
        for _, out, _ in flows:
            assert recorded(out) == list(range(2000))
        assert pool.size >= 9, "9 tasks at once: the pool grew"
        assert len({where(log)[0]["pid"] for _, _, log in flows}) == 3


async def test_a_failed_flow_leaves_the_pool_usable(tmp_path: Path) -> None:
    async with asyncflow.Pool(3) as pool:
        a = CountProducer(100)
        b = FailAt(5, name="fragile")(a)
        with pytest.raises(NodeFailedError, match="fragile"):
            await Flow([a], [Recorder(tmp_path / "bad.jsonl")(b)]).run(pool=pool)
        flow, out, _ = _flow(tmp_path)
        await flow.run(pool=pool)
        assert recorded(out) == list(range(50))


async def test_a_killed_worker_is_reported_and_replaced(tmp_path: Path) -> None:
    async with asyncflow.Pool(3) as pool:
        log = tmp_path / "where.jsonl"
        a = CountProducer(None, delay=0.01)
        b = WhereAmI(str(log), name="victim")(a)
        flow = Flow([a], [Recorder(tmp_path / "out.jsonl")(b)])
        run = asyncio.create_task(flow.run(pool=pool))
        await _until(lambda: bool(where(log)))
        victim = where(log)[0]["pid"]
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(WorkerDiedError, match="victim"):
            await run
        flow, out, log2 = _flow(tmp_path, tag="after")
        await flow.run(pool=pool)
        assert recorded(out) == list(range(50))
        assert where(log2)[0]["pid"] != victim
        assert pool.size == 3


async def test_stop_with_timeout_kills_a_stuck_task_and_the_pool_replaces_it(tmp_path: Path) -> None:
    async with asyncflow.Pool(2) as pool:
        a = CountProducer(None, delay=0.01)
        marker = tmp_path / "stuck"
        flow = Flow([a], [Stuck(str(marker), name="stuck")(a)])
        run = asyncio.create_task(flow.run(pool=pool))
        await _until(marker.exists)
        flow.stop(timeout=0.5)
        with pytest.raises(FlowKilledError, match="stuck"):
            await run
        flow2, out, _ = _flow(tmp_path)
        await flow2.run(pool=pool)
        assert recorded(out) == list(range(50))


async def test_cancelling_a_pooled_run(tmp_path: Path) -> None:
    async with asyncflow.Pool(3) as pool:
        a = CountProducer(None, delay=0.001)
        out = tmp_path / "o.jsonl"
        run = asyncio.create_task(Flow([a], [Recorder(out)(a)]).run(pool=pool))
        await _until(lambda: bool(recorded(out)))
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        flow, out, _ = _flow(tmp_path)
        await flow.run(pool=pool)
        assert recorded(out) == list(range(50))


async def test_processes_are_recycled_after_max_tasks(tmp_path: Path) -> None:
    async with asyncflow.Pool(1, max_tasks=2) as pool:
        pids = []
        for i in range(4):
            log = tmp_path / f"w{i}.jsonl"
            a = CountProducer(3)
            b = WhereAmI(str(log))(a)
            # Three tasks a flow: the processor's process is the one whose pid we see.
            await Flow([a], [Recorder(tmp_path / f"o{i}.jsonl")(b)]).run(pool=pool)
            pids.append(where(log)[0]["pid"])
        assert len(set(pids)) >= 2, pids


async def test_a_gpu_task_gets_its_device_for_its_flow_only(tmp_path: Path) -> None:
    async with asyncflow.Pool(3) as pool:
        log = tmp_path / "w.jsonl"
        a = CountProducer(3)
        b = WhereAmI(str(log), device_type="gpu")(a)
        await Flow([a], [Recorder(tmp_path / "o.jsonl")(b)], flow_options={"gpus": ["7"]}).run(pool=pool)
        assert where(log)[0]["cuda"] == "7"
        log2 = tmp_path / "w2.jsonl"
        a = CountProducer(3)
        b = WhereAmI(str(log2))(a)
        await Flow([a], [Recorder(tmp_path / "o2.jsonl")(b)]).run(pool=pool)
        assert where(log2)[0]["cuda"] == os.environ.get("CUDA_VISIBLE_DEVICES")


async def test_a_task_s_prints_are_flushed_when_it_ends(tmp_path: Path) -> None:
    script = tmp_path / "pooled_print.py"
    script.write_text(
        "import asyncflow, uvloop\n"
        "from asyncflow.core import Flow\n"
        "from asyncflow.consumers import CommandlineConsumer\n"
        "from asyncflow.producers import IntProducer\n"
        "async def main():\n"
        "    async with asyncflow.Pool(2) as pool:\n"
        "        for k in range(2):\n"
        "            a = IntProducer(0, 4)\n"
        "            await Flow([a], [CommandlineConsumer()(a)]).run(pool=pool)\n"
        "            print('flow', k, 'done', flush=True)\n"
        "if __name__ == '__main__':\n"
        "    uvloop.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE, cwd=tmp_path
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0
    expected = [[*map(str, range(5)), "flow", str(k), "done"] for k in range(2)]
    assert out.decode().split() == expected[0] + expected[1]


async def test_misuse_is_named() -> None:
    a = CountProducer(3)
    flow = Flow([a], [Recorder(os.devnull)(a)])
    with pytest.raises(TypeError, match=r"asyncflow\.Pool"):
        await flow.run(pool="warm")
    pool = asyncflow.Pool(1)
    with pytest.raises(RuntimeError, match="start the pool"):
        await flow.run(pool=pool)
    with pytest.raises(ValueError, match="processes"):
        asyncflow.Pool(-1)
    async with pool:
        await flow.run(pool=pool)
    with pytest.raises(RuntimeError, match="closed"):
        await flow.run(pool=pool)
    assert not flow.running


# -- the engine's end-to-end tests, every run() through a pool -------------------------


@pytest.fixture(autouse=True)
async def _pooled_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    if not request.function.__module__.startswith("tests.engine.test_run"):
        yield  # this module's own tests make their pools themselves
        return
    if "capfd" in request.fixturenames:
        pytest.skip(
            "a pool process writes to the stdout it had when the pool started, and capfd swaps "
            "stdout only while the test itself runs (checked by test_a_task_s_prints_are_flushed)"
        )
    async with asyncflow.Pool(3) as pool:
        monkeypatch.setattr(Flow, "run", functools.partialmethod(Flow.run, pool=pool))
        yield


from tests.engine.test_run import *  # noqa: E402,F403  (re-run under the pool)


async def test_at_max_processes_flows_wait_their_turn(tmp_path: Path) -> None:
    async with asyncflow.Pool(3, max_processes=3) as pool:
        flows = [_flow(tmp_path, n=300, tag=str(i)) for i in range(4)]
        await asyncio.gather(*(flow.run(pool=pool) for flow, _, _ in flows))
        for _, out, _ in flows:
            assert recorded(out) == list(range(300))
        assert pool.size == 3
        a = CountProducer(3)
        b = WhereAmI(os.devnull)(WhereAmI(os.devnull)(a))
        with pytest.raises(ValueError, match="max_processes"):
            await Flow([a], [Recorder(os.devnull)(b)]).run(pool=pool)
