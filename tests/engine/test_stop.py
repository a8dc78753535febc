"""The four ways a flow stops (docs/design.md#stop-protocol), and the hard ways."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from asyncflow.core import Flow, FlowKilledError
from tests.helpers import CountProducer, Recorder, Sleepy, events, recorded

ROOT = Path(__file__).resolve().parents[2]


async def wait_for_items(path: Path, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(recorded(path)) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {n} items arrived in {timeout}s")
        await asyncio.sleep(0.02)


def endless_flow(tmp_path: Path) -> tuple[Path, CountProducer, Flow]:
    """An endless producer straight into a Recorder: (its output file, the producer, the flow)."""
    out = tmp_path / "out.jsonl"
    a = CountProducer(None, delay=0.001)
    return out, a, Flow([a], [Recorder(out)(a)])


def assert_prefix_without_gaps(items: list[int]) -> None:
    assert items == list(range(len(items))), "BATCH must deliver a gap-free prefix"


async def test_stop_from_a_coroutine_loses_nothing_emitted(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(None, delay=0.001)
    b = Sleepy(0.002)(a)
    c = Recorder(out)(b)
    flow = Flow([a], [c], flow_options={"queue_size": 8, "batch_size": 4})
    task = asyncio.create_task(flow.run())
    await wait_for_items(out, 20)
    flow.stop()
    await asyncio.wait_for(task, 30)
    items = recorded(out)
    assert_prefix_without_gaps(items)
    stats = flow.stats()
    assert stats[a.name].processed == len(items), "every item the producer emitted reached the consumer"
    assert events(out) == ["open", "close"]


async def test_stop_from_another_thread(tmp_path: Path) -> None:
    out, a, flow = endless_flow(tmp_path)
    task = asyncio.create_task(flow.run())
    await wait_for_items(out, 10)
    thread = threading.Thread(target=flow.stop)
    thread.start()
    thread.join()
    await asyncio.wait_for(task, 30)
    items = recorded(out)
    assert_prefix_without_gaps(items)
    assert flow.stats()[a.name].processed == len(items)


async def test_stop_from_a_signal_handler(tmp_path: Path) -> None:
    out, _, flow = endless_flow(tmp_path)
    previous = signal.signal(signal.SIGUSR1, lambda *_: flow.stop())
    try:
        task = asyncio.create_task(flow.run())
        await wait_for_items(out, 10)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(task, 30)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert_prefix_without_gaps(recorded(out))


async def test_stop_before_run_starts_processes_stops_at_once(tmp_path: Path) -> None:
    out, _, flow = endless_flow(tmp_path)
    task = asyncio.create_task(flow.run())
    flow.stop()  # run() has not started anything yet
    await asyncio.wait_for(task, 30)
    assert recorded(out) == []


async def test_stop_with_timeout_kills_a_stuck_node(tmp_path: Path) -> None:
    a = CountProducer(None, delay=0.001)
    b = Sleepy(1000.0, name="stuck")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    flow = Flow([a], [c])
    task = asyncio.create_task(flow.run())
    await asyncio.sleep(1.0)
    started = time.monotonic()
    flow.stop(timeout=1.0)
    with pytest.raises(FlowKilledError, match="stuck") as info:
        await asyncio.wait_for(task, 30)
    assert time.monotonic() - started < 10
    assert "stuck" in info.value.killed


async def test_cancelling_run_cleans_up_and_reraises(tmp_path: Path) -> None:
    out, _, flow = endless_flow(tmp_path)
    task = asyncio.create_task(flow.run())
    await wait_for_items(out, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not flow.running
    assert events(out) == ["open", "close"], "the consumer was closed gracefully"
    assert psutil.Process().children() == [], "run() returns only after every child has exited"


async def test_cancelling_a_stuck_flow_kills_after_stop_timeout(tmp_path: Path) -> None:
    a = CountProducer(None, delay=0.001)
    b = Sleepy(1000.0)(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    flow = Flow([a], [c], flow_options={"stop_timeout": 1.0})
    task = asyncio.create_task(flow.run())
    await asyncio.sleep(1.0)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 10


async def test_wait_for_timeout_on_run_cleans_up(tmp_path: Path) -> None:
    a = CountProducer(None, delay=0.001)
    c = Recorder(tmp_path / "out.jsonl")(a)
    flow = Flow([a], [c])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flow.run(), 1.5)
    assert not flow.running


async def test_run_twice_at_once_is_refused(tmp_path: Path) -> None:
    a = CountProducer(None, delay=0.001)
    c = Recorder(tmp_path / "out.jsonl")(a)
    flow = Flow([a], [c])
    task = asyncio.create_task(flow.run())
    await asyncio.sleep(0.3)
    with pytest.raises(RuntimeError, match="already running"):
        await flow.run()
    flow.stop()
    await asyncio.wait_for(task, 30)


def _start_script(out: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.engine.scripts.endless", str(out), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal would give it
    )


def _wait_line(proc: subprocess.Popen[str], expected: str, timeout: float = 60.0) -> None:
    assert proc.stdout is not None
    result: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        result.append(proc.stdout.readline().strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert result == [expected], f"expected {expected!r}, got {result!r}"


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


@contextlib.contextmanager
def running_script(out: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """The endless script, once its flow runs; yields it and its children; kills leftovers."""
    proc = _start_script(out, *extra)
    try:
        _wait_line(proc, "running")
        deadline = time.monotonic() + 30
        while len(children := _descendants(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # "hang_close" says "running" before its flow starts
        assert children, "the flow runs in child processes"
        yield proc, children
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ctrl_c_to_the_process_group_stops_gracefully(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with running_script(out) as (proc, children):
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "returned" in stdout
    assert "Traceback" not in stderr, stderr
    items = recorded(out)
    assert items and items == list(range(len(items)))
    assert events(out) == ["open", "close"]
    assert not _alive(children)


def test_second_ctrl_c_ends_a_hanging_close_hard(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with running_script(out, "hang_close") as (proc, children):
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(1.5)
        assert proc.poll() is None, "the first Ctrl-C waits for close()"
        os.killpg(proc.pid, signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    assert "interrupted" in stdout, "asyncflow.run raises KeyboardInterrupt after the second Ctrl-C"
    assert proc.returncode == 130
    assert not _alive(children)


def test_parent_killed_takes_its_children_along(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with running_script(out) as (proc, children):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        alive = children
        while time.monotonic() < deadline:
            alive = _alive(children)
            if not alive:
                break
            time.sleep(0.05)
        assert not alive, "children outlived a SIGKILLed parent"


def test_sigterm_to_the_parent_stops_gracefully_and_exits(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with running_script(out) as (proc, children):
        os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "terminated" in stdout
    assert events(out) == ["open", "close"], "close() ran in the consumer"
    items = recorded(out)
    assert items == list(range(len(items)))
    assert not _alive(children)


async def test_stop_is_seen_between_items_of_a_slow_producer(tmp_path: Path) -> None:
    from asyncflow.consumers import VoidConsumer
    from asyncflow.producers import IntProducer

    a = IntProducer(0, 40, 0.05)
    c = VoidConsumer()(a)
    flow = Flow([a], [c])
    task = asyncio.create_task(flow.run())
    await asyncio.sleep(1.0)
    flow.stop()
    await asyncio.wait_for(task, 30)
    emitted = flow.stats()[a.name].processed
    assert 5 <= emitted < 35, f"the producer went on for {emitted} items after stop()"


def test_a_script_without_main_guard_fails_fast_and_says_why(tmp_path: Path) -> None:
    script = ROOT / "tests" / "engine" / "scripts" / "no_main_guard.py"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "if __name__ == '__main__':" in proc.stderr
    assert "done" not in proc.stdout
