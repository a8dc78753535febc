"""Errors, stops, REALTIME, shares and stats on both engines, and what only the Ray engine does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from asyncflow.core import REALTIME, Flow, FlowError, FlowKilledError, NodeFailedError, ProcessorNode, WorkerDiedError
from tests.helpers import CountProducer, FailAt, Jitter, PidFile, Recorder, Sleepy, events, recorded
from tests.helpers_faults import FailingNext, FailingOpen, UnpicklableOutput

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]


async def run_expecting(flow: Flow, error: type[FlowError], timeout: float = 60) -> FlowError:
    with pytest.raises(error) as info:
        await asyncio.wait_for(flow.run(), timeout)
    return info.value


async def test_items_before_a_failure_reach_the_consumer(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(100)
    c = Recorder(out)(FailAt(7, name="fragile")(a))
    err = await run_expecting(Flow([a], [c], flow_options={"engine": engine}), NodeFailedError)
    assert err.node == "fragile" and err.task == "fragile" and "process()" in str(err)
    assert isinstance(err.__cause__, ValueError) and "boom at 7" in str(err.__cause__)
    assert recorded(out) == list(range(7))
    assert events(out) == ["open", "close"]


async def test_failure_in_next_keeps_what_came_before(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = FailingNext(4)
    c = Recorder(out)(a)
    err = await run_expecting(Flow([a], [c], flow_options={"engine": engine}), NodeFailedError)
    assert err.node == a.name and "next()" in str(err) and isinstance(err.__cause__, KeyError)
    assert recorded(out) == [0, 1, 2, 3]


async def test_failure_in_open_emits_nothing(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(None, delay=0.001)
    c = Recorder(out)(FailingOpen(name="loader")(a))
    err = await run_expecting(Flow([a], [c], flow_options={"engine": engine}), NodeFailedError)
    assert err.node == "loader" and "open()" in str(err) and isinstance(err.__cause__, OSError)
    assert recorded(out) == []
    assert events(out) == ["open", "close"], "the nodes that opened are closed"


async def test_unpicklable_output_names_the_node(engine: str, tmp_path: Path) -> None:
    a = CountProducer(10)
    c = Recorder(tmp_path / "out.jsonl")(UnpicklableOutput(name="locker")(a))
    err = await run_expecting(Flow([a], [c], flow_options={"engine": engine}), NodeFailedError)
    assert err.node == "locker" and "cannot be sent" in str(err) and "lock" in str(err).lower()


async def test_stop_timeout_kills_and_names_the_stuck_task(engine: str, tmp_path: Path) -> None:
    a = CountProducer(None, delay=0.001)
    c = Recorder(tmp_path / "out.jsonl")(Sleepy(1000.0, name="stuck")(a))
    flow = Flow([a], [c], flow_options={"engine": engine})
    task = asyncio.create_task(flow.run())
    deadline = time.monotonic() + 60  # stuck once it has its first item (start-up takes seconds on a loaded machine)
    while not (flow.stats().get(a.name) and flow.stats()[a.name].processed):
        assert time.monotonic() < deadline and not task.done(), "the flow did not start"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    started = time.monotonic()
    flow.stop(timeout=0.5)
    with pytest.raises(FlowKilledError, match="stuck") as info:
        await asyncio.wait_for(task, 30)
    assert time.monotonic() - started < 10
    assert "stuck" in info.value.killed


async def test_realtime_drops_the_oldest_and_delivers_the_newest(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(400)
    c = Recorder(out)(Sleepy(0.005)(a))
    options = {"engine": engine, "queue_size": 4, "batch_size": 1}
    flow = Flow([a], [c], flow_type=REALTIME, flow_options=options)
    await flow.run()
    got = recorded(out)
    dropped = flow.stats()[a.name].dropped
    assert dropped > 0 and len(got) + dropped == 400
    assert got == sorted(got) and got[-1] == 399


async def test_every_worker_takes_a_share_in_order(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(300)
    b = Jitter(nb_tasks=3)(a)
    c = Recorder(out)(b)
    flow = Flow([a], [c], flow_options={"engine": engine})
    await flow.run()
    assert recorded(out) == list(range(300))
    shares = {name: s.processed for name, s in flow.stats().items() if name.startswith(b.name + "[")}
    assert len(shares) == 3 and all(shares.values()), shares


async def test_unordered_stage_delivers_everything(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(200)
    c = Recorder(out)(Jitter(nb_tasks=3, ordered=False)(a))
    await Flow([a], [c], flow_options={"engine": engine}).run()
    assert sorted(recorded(out)) == list(range(200))


async def test_stats_are_live_while_the_flow_runs(engine: str, tmp_path: Path) -> None:
    a = CountProducer(None, delay=0.001)
    c = Recorder(tmp_path / "out.jsonl")(a)
    flow = Flow([a], [c], flow_options={"engine": engine})
    task = asyncio.create_task(flow.run())
    deadline = time.monotonic() + 30
    while not (flow.stats().get(c.name) and flow.stats()[c.name].processed >= 20):
        assert time.monotonic() < deadline, "no live stats"
        await asyncio.sleep(0.05)
    flow.stop()
    await asyncio.wait_for(task, 30)
    assert flow.stats()[a.name].processed == flow.stats()[c.name].processed


async def test_worker_killed_from_outside_is_noticed(engine: str, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    a = CountProducer(None, delay=0.001)
    c = Recorder(tmp_path / "out.jsonl")(PidFile(str(pids), name="victim")(a))
    task = asyncio.create_task(Flow([a], [c], flow_options={"engine": engine}).run())
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text().strip()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    os.kill(int(pids.read_text().split()[0]), signal.SIGKILL)
    killed_at = time.monotonic()
    with pytest.raises(WorkerDiedError, match="victim") as info:
        await asyncio.wait_for(task, 30)
    assert info.value.node == "victim"
    assert time.monotonic() - killed_at < 5


class Visible(ProcessorNode):
    """Emits the CUDA_VISIBLE_DEVICES its task sees."""

    def process(self, x: Any) -> Any:
        return os.environ.get("CUDA_VISIBLE_DEVICES")


async def test_gpu_task_without_a_gpu_falls_back_or_fails(ray_session: None, tmp_path: Path) -> None:
    if ray.cluster_resources().get("GPU", 0):
        pytest.skip("this Ray has GPUs")
    out = tmp_path / "out.jsonl"
    a = CountProducer(3)
    c = Recorder(out)(Visible(device_type="gpu")(a))
    await Flow([a], [c], flow_options={"engine": "ray"}).run()
    assert recorded(out) == ["", "", ""], "a GPU task on the CPU sees no GPU"
    a = CountProducer(3)
    c = Recorder(tmp_path / "strict.jsonl")(Visible(device_type="gpu", cpu_fallback=False, name="needs_gpu")(a))
    with pytest.raises(FlowError, match="needs_gpu"):
        await Flow([a], [c], flow_options={"engine": "ray"}).run()


def test_sigterm_stops_a_flow_that_started_its_ray_and_leaves_nothing(tmp_path: Path) -> None:
    """asyncflow.run's SIGTERM handling survives Ray (ray.init runs off the main thread)."""
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    script = "import sys; from tests.engine_ray.endless_ray import main; main(sys.argv[1])"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out)], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(recorded(out)) < 20:
            assert proc.poll() is None and time.monotonic() < deadline, "the flow did not start"
            time.sleep(0.1)
        children = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143, stderr[-2000:]
    assert events(out) == ["open", "close"]
    items = recorded(out)
    assert items == list(range(len(items)))
    alive = [pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert not alive, "Ray's processes outlived the flow that started them"
