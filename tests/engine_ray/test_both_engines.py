"""The engine-independent semantics, on the local engine and on Ray (one parametrized fixture)."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from asyncflow.core import REALTIME, Flow, FlowError, NodeFailedError
from tests.helpers import Add, CountProducer, FailAt, Jitter, Pair, Recorder, Sleepy, events, recorded

ray = pytest.importorskip("ray")


def test_a_flow_starts_and_stops_its_own_ray(tmp_path: Path) -> None:
    """First in the file: no session Ray yet, so the flow starts one and shuts it down.

    Its node comes from a module the application imports through a folder it put on
    sys.path itself (not on PYTHONPATH): the Ray the flow starts gets that folder.
    """
    if ray.is_initialized():
        pytest.skip("a Ray is already running in this session")
    folder = tmp_path / "app"
    folder.mkdir()
    name = f"app_nodes_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(
        "from asyncflow.core import ProcessorNode\n\n"
        "class AddOne(ProcessorNode):\n"
        "    def process(self, x):\n"
        "        return x + 1\n"
    )
    out = tmp_path / "out.jsonl"
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(name)
        a = CountProducer(20)
        c = Recorder(out)(module.AddOne()(a))
        asyncio.run(Flow([a], [c], flow_options={"engine": "ray"}).run())
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)
    assert recorded(out) == list(range(1, 21))
    assert not ray.is_initialized(), "the Ray the flow started is shut down"


def options(engine: str, **more: Any) -> dict[str, Any]:
    return {"engine": engine, **more}


async def test_order_with_several_tasks(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(300)
    b = Jitter(nb_tasks=3)(a)
    c = Recorder(out)(b)
    await Flow([a], [c], flow_options=options(engine, batch_size=16, queue_size=64)).run()
    assert recorded(out) == list(range(300))
    assert events(out) == ["open", "close"]


async def test_several_producers_zip(engine: str, tmp_path: Path) -> None:
    both, long_only = tmp_path / "b.jsonl", tmp_path / "l.jsonl"
    long, short = CountProducer(30), CountProducer(10)
    c1 = Recorder(both)(Pair()(long, short))
    c2 = Recorder(long_only)(long)
    await Flow([long, short], [c1, c2], flow_options=options(engine)).run()
    assert recorded(both) == [[i, i] for i in range(10)]
    assert recorded(long_only) == list(range(30))


async def test_node_exception_names_the_node(engine: str, tmp_path: Path) -> None:
    a = CountProducer(100)
    b = FailAt(7, name="fragile")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    with pytest.raises(NodeFailedError, match="fragile") as info:
        await Flow([a], [c], flow_options=options(engine)).run()
    assert isinstance(info.value.__cause__, ValueError)
    assert "Remote traceback" in str(info.value)


async def test_stop_loses_nothing_emitted(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(None, delay=0.001)
    c = Recorder(out)(Add(0)(a))
    flow = Flow([a], [c], flow_options=options(engine))
    task = asyncio.create_task(flow.run())
    deadline = time.monotonic() + 60  # Ray's actors may take seconds to start on a loaded machine
    while not recorded(out):
        assert time.monotonic() < deadline and not task.done(), "nothing reached the consumer"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    flow.stop()
    await asyncio.wait_for(task, 60)
    items = recorded(out)
    assert items and items == list(range(len(items)))
    assert flow.stats()[a.name].processed == len(items)


async def test_realtime_drops_are_counted(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(3000)
    c = Recorder(out)(Sleepy(0.002)(a))
    flow = Flow([a], [c], flow_type=REALTIME, flow_options=options(engine, queue_size=32, batch_size=16))
    await flow.run()
    got = recorded(out)
    dropped = flow.stats()[a.name].dropped
    assert dropped > 0 and len(got) + dropped == 3000
    assert got == sorted(got)


async def test_cancellation_cleans_up(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(None, delay=0.001)
    c = Recorder(out)(a)
    flow = Flow([a], [c], flow_options=options(engine))
    task = asyncio.create_task(flow.run())
    await asyncio.sleep(2.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events(out) == ["open", "close"]


class ExitOnItem(Add):
    """Ends its process on item 5 (a dead worker, not an exception)."""

    def process(self, x: int) -> int:
        if x == 5:
            import os

            os._exit(3)
        return x


async def test_dead_worker_is_a_flow_error(engine: str, tmp_path: Path) -> None:
    a = CountProducer(100)
    b = ExitOnItem(0, name="doomed")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    with pytest.raises(FlowError, match="doomed"):
        await asyncio.wait_for(Flow([a], [c], flow_options=options(engine)).run(), 60)


def test_engine_ray_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from asyncflow.engine import scheduler_for

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.delitem(sys.modules, "asyncflow.engine.ray_scheduler", raising=False)
    with pytest.raises(ImportError, match=r"asyncflow\[ray\]"):
        scheduler_for("ray")


async def test_a_reused_buffer_is_fixed_when_returned(engine: str, tmp_path: Path) -> None:
    from tests.helpers_buffers import ReusedBufferProducer

    out = tmp_path / "out.jsonl"
    a = ReusedBufferProducer(50)
    c = Recorder(out)(a)
    await Flow([a], [c], flow_options=options(engine)).run()
    assert recorded(out) == [[i] * 4 for i in range(50)]
