"""asyncflow.compat.videoflow: the videoflow facade's semantics, and the module nodes it needs.

The flow tests run real flows (one process per task); the node classes they use
are at module top level so that spawned processes can unpickle them.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import asyncflow
from asyncflow.compat import videoflow
from asyncflow.compat.videoflow.consumers import CommandlineConsumer, VoidConsumer
from asyncflow.compat.videoflow.core import Flow
from asyncflow.compat.videoflow.core.constants import BATCH, REALTIME
from asyncflow.compat.videoflow.core.node import (
    ConsumerNode,
    ModuleNode,
    OneTaskProcessorNode,
    ProcessorNode,
    ProducerNode,
    TaskModuleNode,
)
from asyncflow.compat.videoflow.processors import IdentityProcessor, JoinerProcessor
from asyncflow.compat.videoflow.processors.aggregators import SumAggregator
from asyncflow.compat.videoflow.producers import IntProducer
from asyncflow.core import FlowError, GraphError, NodeConfigError, NodeFailedError
from tests.helpers import CountProducer, FailAt, Recorder, events, recorded

ROOT = Path(__file__).resolve().parents[2]


# -- nodes (top level: spawned processes unpickle them) ------------------------------------------


class FileWriter(ProcessorNode):
    """A processor whose only effect is to append each item to a file; its output is None."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = str(path)

    def process(self, item: Any) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(item) + "\n")


class Tagged(ProcessorNode):
    """Appends ``tag`` to a list (a new one) and records its lifecycle in ``log``, when given one."""

    def __init__(self, tag: str, log: list[str] | None = None, *, fail_open: bool = False) -> None:
        super().__init__(name=f"tagged-{tag}")
        self.tag = tag
        self.log = log
        self.fail_open = fail_open

    def open(self) -> None:
        if self.fail_open:
            raise RuntimeError(f"{self.tag} cannot open")
        if self.log is not None:
            self.log.append(f"open {self.tag}")

    def process(self, item: Any) -> list[Any]:
        return [*(item if isinstance(item, list) else [item]), self.tag]

    def close(self) -> None:
        if self.log is not None:
            self.log.append(f"close {self.tag}")


class FailingClose(Tagged):
    """A Tagged whose close() raises."""

    def close(self) -> None:
        super().close()
        raise OSError(f"{self.tag} cannot close")


class Square(ProcessorNode):
    def process(self, x: int) -> int:
        return x * x


class Boom(ProcessorNode):
    def process(self, x: int) -> int:
        raise ValueError(f"boom at {x}")


class AsyncSquare(ProcessorNode):
    async def process(self, x: int) -> int:
        await asyncio.sleep(0)
        return x * x


class Counter(OneTaskProcessorNode):
    def open(self) -> None:
        self.n = 0

    def process(self, x: Any) -> int:
        self.n += 1
        return self.n


def lines_of(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


# -- the module tree --------------------------------------------------------------------------


def test_the_module_tree_mirrors_videoflow() -> None:
    from asyncflow.compat.videoflow import consumers, core, processors, producers
    from asyncflow.compat.videoflow.core import constants, flow, node
    from asyncflow.compat.videoflow.processors import aggregators, vision

    assert core.Flow is flow.Flow is Flow
    assert constants.BATCH == "batch" and constants.REALTIME == "realtime"
    assert node.ProcessorNode is asyncflow.ProcessorNode, "the classes are asyncflow's own"
    assert node.TaskModuleNode is asyncflow.processors.TaskModuleNode
    assert producers.IntProducer is asyncflow.producers.IntProducer
    assert processors.JoinerProcessor is asyncflow.processors.JoinerProcessor
    assert aggregators.SumAggregator is processors.SumAggregator is asyncflow.processors.SumAggregator
    assert consumers.CommandlineConsumer is asyncflow.consumers.CommandlineConsumer
    assert isinstance(vision.__all__, list)
    assert videoflow.VIDEOFLOW_VERSION == "0.2.10" == videoflow.__version__
    with pytest.raises(AttributeError):
        producers.NoSuchProducer  # noqa: B018


def test_the_vision_names_are_asyncflow_s_when_available() -> None:
    from asyncflow.compat.videoflow.processors import vision

    try:
        import asyncflow.processors.vision as real
    except ImportError as exc:
        pytest.skip(f"asyncflow's vision processors are not importable here: {exc}")
    # Built in the facade (videoflow's, on asyncflow's bases) or from asyncflow's trackers module:
    own = {"Segmenter", "SegmenterAnnotator", "BoundingBoxTracker", "KalmanFilterBoundingBoxTracker"}
    for name in vision.__all__:
        if name not in own:
            assert getattr(vision, name) is getattr(real, name)


# -- Flow: construction ---------------------------------------------------------------------


def test_realtime_is_the_default_flow_type() -> None:
    a = IntProducer(0, 3)
    c = VoidConsumer()(a)
    assert Flow([a], [c]).flow_type == REALTIME
    assert Flow([a], [c]).core_flow.flow_type == asyncflow.REALTIME
    assert Flow([a], [c], flow_type=BATCH).flow_type == asyncflow.BATCH
    assert Flow([a], [c], "batch").flow_type == BATCH
    with pytest.raises(ValueError, match="flow_type"):
        Flow([a], [c], flow_type="fast")


def test_a_flow_without_consumers_gets_hidden_ones() -> None:
    a = IntProducer(0, 3)
    b = IdentityProcessor()(a)
    dead_end = IdentityProcessor()(b)
    c = CommandlineConsumer()(b)
    flow = Flow([a], [])
    assert [s.parents for s in flow.hidden_consumers] == [(dead_end,)]
    assert c in flow.core_flow.graph.consumers, "a consumer below the producers runs even if not listed"


def test_hidden_consumers_are_unwired_when_the_core_rejects_the_graph() -> None:
    a, other = IntProducer(0, 3), IntProducer(0, 3)
    j = JoinerProcessor()(a, other)
    with pytest.raises(GraphError, match="not in the producers list"):
        Flow([a], [])
    assert j.children == ()


def test_bad_lists_are_reported_by_the_core() -> None:
    with pytest.raises(TypeError):
        Flow("producer", [])  # type: ignore[arg-type]
    with pytest.raises(GraphError, match="empty"):
        Flow([], [])


def test_join_and_stop_before_run_return_at_once() -> None:
    a = IntProducer(0, 3)
    c = VoidConsumer()(a)
    flow = Flow([a], [c])
    flow.join()
    assert not flow.running


# -- Flow: running ----------------------------------------------------------------------------


def test_run_returns_at_once_and_join_waits(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = IntProducer(0, 19, 0.05)
    b = SumAggregator()(a)
    c = Recorder(out)(b)
    flow = Flow([a], [c])
    flow.run()
    assert flow.running, "run() returns once the tasks are up, long before the 20 paced items are out"
    assert events(out) == ["open"], "every task had opened its node when run() returned"
    assert len(recorded(out)) < 20
    flow.join()
    assert not flow.running
    assert recorded(out) == [i * (i + 1) // 2 for i in range(20)]
    assert events(out) == ["open", "close"]
    assert flow.stats()[a.name].processed == 20


def test_run_twice_raises(tmp_path: Path) -> None:
    a = IntProducer(0, 2)
    c = Recorder(tmp_path / "out.jsonl")(a)
    flow = Flow([a], [c])
    flow.run()
    with pytest.raises(RuntimeError, match="already called"):
        flow.run()
    flow.join()
    with pytest.raises(RuntimeError, match="already called"):
        flow.run()


def test_stop_stops_and_waits(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(None, delay=0.001)
    c = Recorder(out)(a)
    flow = Flow([a], [c], flow_type=BATCH)
    flow.run()
    wait_until(lambda: len(recorded(out)) >= 20)
    flow.stop()
    assert not flow.running
    items = recorded(out)
    assert items == list(range(len(items))), "BATCH: a gap-free prefix, nothing emitted is lost"
    assert events(out) == ["open", "close"]
    assert psutil.Process().children() == [], "stop() returns once every process has exited"


def test_stop_before_run_ends_the_run_at_once(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = CountProducer(None, delay=0.001)
    c = Recorder(out)(a)
    flow = Flow([a], [c])
    flow.stop()
    flow.run()
    flow.join()
    assert recorded(out) == []


def test_errors_surface_from_join_as_flow_error(tmp_path: Path) -> None:
    a = CountProducer(None, delay=0.001)
    # REALTIME (the facade's default) may drop any given item: fail on whatever comes.
    b = FailAt(None, name="fails")(a)
    c = Recorder(tmp_path / "out.jsonl")(b)
    flow = Flow([a], [c])
    flow.run()
    with pytest.raises(FlowError, match="fails") as info:
        flow.join()
    assert isinstance(info.value, NodeFailedError)
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(FlowError):
        flow.join()  # the error stays


def test_a_flow_without_consumer_runs_its_processors(tmp_path: Path) -> None:
    out = tmp_path / "side-effects.jsonl"
    a = IntProducer(0, 9)
    FileWriter(out)(a)
    flow = Flow([a], [], flow_type=BATCH)  # REALTIME (the default) would drop what a busy writer misses
    flow.run()
    flow.join()
    assert lines_of(out) == list(range(10))


def test_a_processor_nobody_reads_still_runs(tmp_path: Path) -> None:
    side, out = tmp_path / "side.jsonl", tmp_path / "out.jsonl"
    a = IntProducer(0, 9)
    FileWriter(side)(a)
    c = Recorder(out)(Square()(a))
    flow = Flow([a], [c], flow_type=BATCH)
    flow.run()
    flow.join()
    assert lines_of(side) == list(range(10))
    assert recorded(out) == [i * i for i in range(10)]


def test_the_main_module_is_left_as_it_was(tmp_path: Path) -> None:
    main = sys.modules["__main__"]
    spec = main.__spec__
    a = IntProducer(0, 3)
    c = Recorder(tmp_path / "out.jsonl")(a)
    flow = Flow([a], [c])
    flow.run()
    flow.join()
    assert main.__spec__ is spec


# -- Flow: Ctrl-C and scripts, in a subprocess ------------------------------------------------------

SCRIPT = """
import sys
import time
from asyncflow.compat.videoflow.core import Flow
from tests.helpers import CountProducer
from tests.engine.scripts.endless import Announcer, HangingCloseRecorder

out, mode = sys.argv[1], sys.argv[2]
producer = CountProducer(None, delay=0.002)
consumer = (HangingCloseRecorder if mode == "hang" else Announcer)(out)(producer)
flow = Flow([producer], [consumer])
flow.run()
if mode == "sleep":
    time.sleep(1000)  # Ctrl-C here: an ordinary KeyboardInterrupt, outside join()
try:
    flow.join()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
print("returned", flush=True)
"""


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
    )


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def _finish(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_ctrl_c_during_join_stops_gracefully(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = _start("-c", SCRIPT, str(out), "graceful")
    try:
        wait_until(lambda: len(recorded(out)) >= 10, timeout=60)
        children = _descendants(proc.pid)
        assert children, "the flow runs in child processes"
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        _finish(proc)
    assert proc.returncode == 0, stderr
    assert "returned" in stdout
    assert "Traceback" not in stderr, stderr
    items = recorded(out)
    assert items == sorted(set(items)), "in order (REALTIME, the default, may drop an item under load)"
    assert events(out) == ["open", "close"], "the consumer was closed gracefully"
    assert not _alive(children)


def test_a_second_ctrl_c_during_join_kills(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = _start("-c", SCRIPT, str(out), "hang")
    try:
        wait_until(lambda: len(recorded(out)) >= 10, timeout=60)
        children = _descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(1.5)
        assert proc.poll() is None, "the first Ctrl-C waits for close()"
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        _finish(proc)
    assert "interrupted" in stdout, stderr
    assert proc.returncode == 130
    assert not _alive(children)


def test_ctrl_c_outside_join_stops_the_flow_as_the_script_exits(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = _start("-c", SCRIPT, str(out), "sleep")
    try:
        wait_until(lambda: len(recorded(out)) >= 10, timeout=60)
        children = _descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        _finish(proc)
    assert "KeyboardInterrupt" in stderr, "the script itself is interrupted as usual"
    assert proc.returncode in (-signal.SIGINT, 128 + signal.SIGINT)
    assert events(out) == ["open", "close"], "the exit hook stopped the flow gracefully"
    items = recorded(out)
    assert items == sorted(set(items)), "in order (REALTIME, the default, may drop an item under load)"
    assert not _alive(children)


UNGUARDED = """
from asyncflow.compat.videoflow.core import Flow
from asyncflow.compat.videoflow.core.constants import BATCH
from asyncflow.compat.videoflow.core.node import ProcessorNode
from asyncflow.compat.videoflow.producers import IntProducer
from asyncflow.compat.videoflow.consumers import CommandlineConsumer


class Double(ProcessorNode):
    def process(self, x):
        return 2 * x


producer = IntProducer(0, 4)
printer = CommandlineConsumer()(Double()(producer))
flow = Flow([producer], [printer], flow_type=BATCH)
flow.run()
flow.join()
"""


def test_an_unguarded_script_with_its_own_nodes_runs(tmp_path: Path) -> None:
    """Its processes must import it (Double is defined there): run() and join() do nothing in them."""
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    proc = _start(str(script))
    try:
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        _finish(proc)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert stdout.split() == ["0", "2", "4", "6", "8"]


# -- TaskModuleNode and ModuleNode (asyncflow.processors.module) -------------------------------------


def test_a_module_runs_its_chain_in_order_and_opens_and_closes_it() -> None:
    log: list[str] = []
    a = IntProducer(0, 3)
    x = Tagged("x", log)(a)
    y = Tagged("y", log)(x)
    z = Tagged("z", log)(y)
    module = TaskModuleNode(x, z)
    assert module.nodes == (x, y, z)
    assert (module.entry_node, module.exit_node) == (x, z)
    module.open()
    assert module.process(7) == [7, "x", "y", "z"]
    module.close()
    assert log == ["open x", "open y", "open z", "close z", "close y", "close x"]


def test_a_module_takes_over_the_edges_of_its_entry_and_exit() -> None:
    a = IntProducer(0, 3)
    x = IdentityProcessor()(a)
    z = Square()(x)
    c = VoidConsumer()(z)
    module = TaskModuleNode(x, z)
    assert a.children == (module,)
    assert module.parents == (a,)
    assert c.parents == (module,)
    assert module.children == (c,)
    assert x.parents == () and z.children == ()
    with pytest.raises(RuntimeError, match="already connected"):
        module(a)


def test_a_module_whose_entry_is_unwired_is_called_like_any_processor() -> None:
    x = IdentityProcessor()
    z = Square()(x)
    a = IntProducer(0, 3)
    module = TaskModuleNode(x, z)(a)
    assert module.parents == (a,) and a.children == (module,)


def test_a_module_runs_a_diamond_as_videoflow_s_example_does() -> None:
    a = IntProducer(0, 3)
    identity = IdentityProcessor()(a)
    identity1 = IdentityProcessor()(identity)
    joined = JoinerProcessor()(identity, identity1)
    module = TaskModuleNode(identity, joined)
    module.open()
    assert module.process(4) == (4, 4)
    module.close()


def test_a_module_pickles_with_its_inner_nodes_configuration() -> None:
    a = IntProducer(0, 3)
    x = Tagged("x")(a)
    y = Tagged("y")(IdentityProcessor()(x))
    joined = JoinerProcessor()(x, y)
    module = TaskModuleNode(x, joined, name="m")
    copy = pickle.loads(pickle.dumps(module))
    assert copy.name == "m" and copy.parents == ()
    assert [n.name for n in copy.nodes] == [n.name for n in module.nodes]
    assert all(n.parents == () for n in copy.nodes), "the inner nodes' own links are not carried"
    copy.open()
    assert copy.process(3) == ([3, "x"], [3, "x", "y"])
    copy.close()


def test_a_failing_open_closes_the_nodes_already_open() -> None:
    log: list[str] = []
    x = Tagged("x", log)
    y = Tagged("y", log)(x)
    z = Tagged("z", log, fail_open=True)(y)
    module = TaskModuleNode(x, z)
    with pytest.raises(RuntimeError, match="z cannot open"):
        module.open()
    assert log == ["open x", "open y", "close y", "close x"]


def test_close_closes_every_node_and_raises_the_first_error() -> None:
    log: list[str] = []
    x = FailingClose("x", log)
    y = FailingClose("y", log)(x)
    module = TaskModuleNode(x, y)
    module.open()
    with pytest.raises(OSError, match="y cannot close"):
        module.close()
    assert log == ["open x", "open y", "close y", "close x"]


def test_an_error_inside_a_module_names_the_inner_node() -> None:
    x = IdentityProcessor()
    boom = Boom(name="inner-boom")(x)
    module = TaskModuleNode(x, boom)
    with pytest.raises(ValueError, match="boom at 1") as info:
        module.process(1)
    assert any("inner-boom" in note for note in getattr(info.value, "__notes__", []))


def test_module_misuse_raises_node_config_error_naming_the_node() -> None:
    a = IntProducer(0, 3)
    x = IdentityProcessor()(a)
    with pytest.raises(NodeConfigError, match="AsyncSquare"):
        TaskModuleNode(x, AsyncSquare()(x))
    outside = IdentityProcessor(name="outside")(a)
    inner = JoinerProcessor(name="reads-outside")(x, outside)
    with pytest.raises(NodeConfigError, match=r"'reads-outside' reads .*'outside'"):
        TaskModuleNode(x, inner)
    elsewhere = IdentityProcessor(name="elsewhere")(a)
    with pytest.raises(NodeConfigError, match=r"'elsewhere'.*is not below"):
        TaskModuleNode(x, elsewhere)
    y = IdentityProcessor()
    VoidConsumer(name="sink")(y)
    z = Square()(y)
    with pytest.raises(NodeConfigError, match=r"'sink'.*not a processor"):
        TaskModuleNode(y, z)
    counter_entry = IdentityProcessor()
    counter = Counter()(counter_entry)
    with pytest.raises(NodeConfigError, match="one-task"):
        TaskModuleNode(counter_entry, counter, nb_tasks=2)
    skip_entry = IdentityProcessor()
    skipping = Square(on_error="skip")(skip_entry)
    with pytest.raises(NodeConfigError, match="on_error"):
        TaskModuleNode(skip_entry, skipping)
    with pytest.raises(NodeConfigError, match="entry_node"):
        TaskModuleNode(a, x)  # type: ignore[arg-type]


def test_module_node_runs_as_one_task() -> None:
    x = IdentityProcessor()
    z = Square()(x)
    module = ModuleNode(x, z)
    assert module.nb_tasks == 1
    with pytest.raises(NodeConfigError, match="nb_tasks must stay 1"):
        module.nb_tasks = 2
    assert isinstance(module, TaskModuleNode)


def test_a_module_in_several_tasks_keeps_the_order(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    a = IntProducer(0, 199)
    x = IdentityProcessor()(a)
    z = Square()(x)
    module = TaskModuleNode(x, z, nb_tasks=2)
    c = Recorder(out)(module)
    flow = Flow([a], [c], flow_type=BATCH)
    flow.run()
    flow.join()
    assert recorded(out) == [i * i for i in range(200)]


def test_the_facade_runs_in_a_thread_of_its_own() -> None:
    a = IntProducer(0, 2)
    c = VoidConsumer()(a)
    flow = Flow([a], [c])
    flow.run()
    names = [t.name for t in threading.enumerate()]
    flow.join()
    assert any(name.startswith("asyncflow ") for name in names)


def test_producer_and_consumer_kinds_are_asyncflow_s() -> None:
    assert issubclass(IntProducer, ProducerNode)
    assert issubclass(CommandlineConsumer, ConsumerNode)
