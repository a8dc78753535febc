"""Errors end the flow with a FlowError that names the node (docs/design.md#errors)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from asyncflow import FlowError
from asyncflow.core import Flow, NodeFailedError, WorkerDiedError
from asyncflow.engine.scheduler import RemoteTraceback
from tests.helpers import CountProducer, FailAt, PidFile, Recorder, events, recorded
from tests.helpers_faults import (
    Dies,
    EmitsUnloadable,
    FailingClose,
    FailingConsume,
    FailingNext,
    FailingOpen,
    RaisesUnpicklable,
    SlowSink,
    UnpicklableOutput,
)


async def run_expecting(flow: Flow, error: type[FlowError] = FlowError, timeout: float = 60) -> FlowError:
    with pytest.raises(error) as info:
        await asyncio.wait_for(flow.run(), timeout)
    return info.value


async def test_exception_in_process_names_node_task_and_chains_cause(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(100)
    b = FailAt(7, name="fragile")(a)
    c = Recorder(out)(b)
    err = await run_expecting(Flow([a], [c]), NodeFailedError)
    assert err.node == "fragile" and err.task == "fragile"
    assert "fragile" in str(err) and "process()" in str(err)
    assert isinstance(err.__cause__, ValueError) and "boom at 7" in str(err.__cause__)
    assert "Remote traceback" in str(err) and "raise ValueError" in str(err)
    assert recorded(out) == list(range(7)), "items before the failure still reach the consumer"
    assert events(out) == ["open", "close"], "the consumer is closed after the error"


async def test_exception_in_one_of_several_workers_names_the_task(tmp_path: Path) -> None:
    a = CountProducer(100)
    b = FailAt(10, nb_tasks=3, name="par")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    err = await run_expecting(Flow([a], [c]), NodeFailedError)
    assert err.node == "par"
    assert err.task == "par[1]", "item 10 goes to worker 10 % 3 == 1"


async def test_exception_in_open_skips_close_and_stops(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(None, delay=0.001)
    b = FailingOpen(name="loader")(a)
    c = Recorder(out)(b)
    err = await run_expecting(Flow([a], [c]), NodeFailedError)
    assert err.node == "loader" and "open()" in str(err)
    assert isinstance(err.__cause__, OSError)
    assert recorded(out) == [], "producers never start when a node cannot open"


async def test_exception_in_next(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = FailingNext(4)
    c = Recorder(out)(a)
    err = await run_expecting(Flow([a], [c]), NodeFailedError)
    assert err.node == a.name and "next()" in str(err)
    assert isinstance(err.__cause__, KeyError)
    assert recorded(out) == [0, 1, 2, 3]


async def test_exception_in_consume(tmp_path: Path) -> None:
    a = CountProducer(100)
    c = FailingConsume(name="sink")(a)
    err = await run_expecting(Flow([a], [c]), NodeFailedError)
    assert err.node == "sink" and "consume()" in str(err)
    assert isinstance(err.__cause__, ZeroDivisionError)


async def test_exception_in_close_after_a_clean_run_is_reported(tmp_path: Path) -> None:
    a = CountProducer(10)
    c = FailingClose(name="closer")(a)
    err = await run_expecting(Flow([a], [c]), NodeFailedError)
    assert err.node == "closer" and "close()" in str(err)


async def test_unpicklable_output_is_named(tmp_path: Path) -> None:
    a = CountProducer(10)
    b = UnpicklableOutput(name="locker")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    err = await run_expecting(Flow([a], [c]), NodeFailedError)
    assert err.node == "locker"
    assert "cannot be sent" in str(err) and "lock" in str(err).lower()


async def test_unpicklable_exception_still_reports_its_traceback(tmp_path: Path) -> None:
    a = CountProducer(10)
    b = RaisesUnpicklable(name="odd")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    err = await run_expecting(Flow([a], [c]), NodeFailedError)
    assert "odd failure" in str(err)
    assert isinstance(err.__cause__, RemoteTraceback)


async def test_on_error_skip_drops_and_counts(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(50)
    b = FailAt(10, on_error="skip")(a)
    c = Recorder(out)(b)
    flow = Flow([a], [c])
    await flow.run()
    assert recorded(out) == [i for i in range(50) if i != 10]
    assert flow.stats()[b.name].skipped == 1


@pytest.mark.parametrize("how", ["sigkill", "exit", "segfault"])
async def test_worker_that_dies_is_reported(tmp_path: Path, how: str) -> None:
    a = CountProducer(None, delay=0.001)
    b = Dies(how, name="doomed")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    started = time.monotonic()
    err = await run_expecting(Flow([a], [c]), WorkerDiedError)
    assert err.node == "doomed" and "doomed" in str(err)
    assert time.monotonic() - started < 20
    if how == "sigkill":
        assert err.exitcode == -signal.SIGKILL and "signal 9" in str(err)
    elif how == "exit":
        assert err.exitcode == 3
    else:
        assert err.exitcode == -signal.SIGSEGV


@pytest.mark.parametrize("how", ["sigkill", "exit", "segfault"])
async def test_one_of_three_workers_dies(tmp_path: Path, how: str) -> None:
    a = CountProducer(None, delay=0.001)
    b = Dies(how, at=20, nb_tasks=3, name="trio")(a)
    c = SlowSink()(b)
    err = await run_expecting(Flow([a], [c]), WorkerDiedError)
    assert err.node == "trio" and err.task == "trio[2]"


async def test_worker_killed_from_outside_is_noticed_within_a_second(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    a = CountProducer(None, delay=0.001)
    b = PidFile(str(pids), name="victim")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    task = asyncio.create_task(Flow([a], [c]).run())
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text().strip()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    pid = int(pids.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    with pytest.raises(WorkerDiedError, match="victim"):
        await asyncio.wait_for(task, 30)
    noticed = time.monotonic() - killed_at
    assert noticed < 5, f"took {noticed:.2f}s to end the flow after the kill"


async def test_skipped_errors_are_logged_in_the_parent_once_per_kind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = CountProducer(30)
    b = FailAt(None, on_error="skip", name="picky")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    flow = Flow([a], [c])
    with caplog.at_level("WARNING", logger="asyncflow"):
        await flow.run()
    skips = [r for r in caplog.records if "skipping this item" in r.getMessage()]
    assert len(skips) == 1, "logged once per kind of error"
    assert "[picky]" in skips[0].getMessage() and "ValueError" in skips[0].getMessage()
    assert "Traceback" in skips[0].getMessage(), "with its traceback"
    assert flow.stats()["picky"].skipped == 30


async def test_open_failure_behind_an_endless_producer_ends_promptly(tmp_path: Path) -> None:
    # The producer may get "stop" before its task listens for it: it must still see it.
    for i in range(5):
        a = CountProducer(None, delay=0.001)
        c = Recorder(tmp_path / f"out{i}.jsonl")(FailingOpen(name="loader")(a))
        started = time.monotonic()
        with pytest.raises(NodeFailedError, match="loader"):
            await asyncio.wait_for(Flow([a], [c]).run(), 60)
        assert time.monotonic() - started < 5, "not after stop_timeout (10 s)"


async def test_after_a_worker_fails_the_consumer_gets_an_in_order_prefix(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(500)
    b = FailAt(250, nb_tasks=3, name="par")(a)
    c = Recorder(out)(b)
    await run_expecting(Flow([a], [c]), NodeFailedError)
    # Exactly the items before the failure, in order: nothing after the gap it left.
    assert recorded(out) == list(range(250))


@pytest.mark.parametrize("how", ["exit", "sigkill"])
async def test_after_a_worker_dies_the_consumer_gets_an_in_order_prefix(tmp_path: Path, how: str) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(500)
    b = Dies(how, at=250, nb_tasks=3, name="par")(a)
    c = Recorder(out)(b)
    await run_expecting(Flow([a], [c]), WorkerDiedError)
    got = recorded(out)
    assert got == list(range(len(got))), got[:40]
    assert len(got) <= 250


async def test_an_output_that_cannot_be_unpickled_fails_promptly_naming_its_node(tmp_path: Path) -> None:
    a = CountProducer(None, delay=0.001)
    b = EmitsUnloadable(3, name="maker")(a)
    c = Recorder(tmp_path / "out.jsonl", name="sink")(b)
    started = time.monotonic()
    err = await run_expecting(Flow([a], [c], flow_options={"stop_timeout": 30}), NodeFailedError)
    assert time.monotonic() - started < 8, "not the stop_timeout kill"
    assert "'maker'" in str(err) and "could not be read back" in str(err)
    assert "TwoArgError" in str(err) or "argument" in str(err)


async def test_cancelling_run_in_its_first_milliseconds_is_prompt() -> None:
    for delay in (0.0, 0.002, 0.02, 0.2):
        a = CountProducer(None, delay=0.001)
        b = Recorder(os.devnull)(a)
        run = asyncio.create_task(Flow([a], [b], flow_options={"stop_timeout": 30}).run())
        await asyncio.sleep(delay)
        started = time.monotonic()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert time.monotonic() - started < 5, f"cancelled after {delay} s"
