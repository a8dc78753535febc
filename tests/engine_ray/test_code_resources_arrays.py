"""What the Ray engine does about code, resources and arrays: node classes the workers cannot
import, flow_options["ray_runtime_env"], what each actor reserves, flows that can never be
placed, and numpy arrays through Ray's object store (read-only, one copy)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from asyncflow.core import ConsumerNode, Flow, FlowError, NodeConfigError, NodeFailedError, ProcessorNode, ProducerNode
from tests.helpers import CountProducer, Recorder, recorded

ray = pytest.importorskip("ray")
np = pytest.importorskip("numpy")

async def test_a_node_class_the_workers_cannot_import_names_its_module(
    ray_session: None, hidden_module: Any, tmp_path: Path
) -> None:
    a = CountProducer(5)
    c = Recorder(tmp_path / "out.jsonl")(hidden_module.Triple(name="tripler")(a))
    with pytest.raises(NodeFailedError) as info:
        await asyncio.wait_for(Flow([a], [c], flow_options={"engine": "ray"}).run(), 60)
    message = str(info.value)
    assert info.value.node == "tripler" and hidden_module.__name__ in message, message
    assert "could not be loaded on its Ray worker" in message and "ray_runtime_env" in message, message


class ReadsVariable(ProcessorNode):
    """Emits the value of an environment variable in its worker."""

    def process(self, x: Any) -> Any:
        return os.environ.get("ASYNCFLOW_TEST_VARIABLE")


async def test_ray_runtime_env_reaches_the_actors(ray_session: None, tmp_path: Path) -> None:
    """On a Ray the application started itself, each actor gets flow_options["ray_runtime_env"]."""
    out = tmp_path / "out.jsonl"
    a = CountProducer(2)
    c = Recorder(out)(ReadsVariable()(a))
    env = {"env_vars": {"ASYNCFLOW_TEST_VARIABLE": "shipped"}}
    await asyncio.wait_for(Flow([a], [c], flow_options={"engine": "ray", "ray_runtime_env": env}).run(), 120)
    assert recorded(out) == ["shipped", "shipped"]


def test_options_and_node_resources_are_checked() -> None:
    a = CountProducer(1)
    with pytest.raises(ValueError, match="ray_runtime_env"):
        Flow([a], [Recorder("x")(a)], flow_options={"ray_runtime_env": ["pip"]})
    with pytest.raises(NodeConfigError, match="resources"):
        ReadsVariable(resources={"CPU": -1})
    with pytest.raises(NodeConfigError, match="resources"):
        ReadsVariable(resources=["CPU"])  # type: ignore[arg-type]
    node = ReadsVariable(resources={"CPU": 2, "my_accel": 1})
    assert node.resources == {"CPU": 2, "my_accel": 1}
    b = CountProducer(1)
    consumer = Recorder("x")(b)
    consumer.resources = {"GPU": True}  # set after __init__: checked by Flow()
    with pytest.raises(NodeConfigError, match="resources"):
        Flow([b], [consumer])


def test_each_task_reserves_a_cpu_or_the_share_that_places_the_flow() -> None:
    from asyncflow.engine.ray_scheduler import cpu_share

    assert cpu_share([16.0, 16.0], 7) == 1.0  # room enough: one CPU each
    assert cpu_share([2.0], 7) == 0.25  # the 2-core development machine: 8 quarters
    assert cpu_share([2.0], 3) == 0.5
    assert cpu_share([1.0, 1.0, 1.0], 4) == 0.5  # whole shares per node: 2 per node
    assert cpu_share([2.0], 6) == 0.3333  # rounded down to Ray's 1e-4: 6 fit
    assert cpu_share([2.0], 2, reserved=[1.5]) == 0.25  # a node's own CPU: 1.5 taken, 0.5 left
    assert cpu_share([0.0], 1) == 0.0  # no CPU at all: the flow says so


async def test_a_flow_asking_for_what_the_cluster_lacks_fails_at_once(ray_session: None, tmp_path: Path) -> None:
    a = CountProducer(5)
    c = Recorder(tmp_path / "out.jsonl")(ReadsVariable(name="accelerated", resources={"my_accel": 1})(a))
    started = time.monotonic()
    with pytest.raises(FlowError, match="can never be placed") as info:
        await asyncio.wait_for(Flow([a], [c], flow_options={"engine": "ray"}).run(), 60)
    assert "accelerated" in str(info.value) and "my_accel: 1 asked, none in the cluster" in str(info.value)
    assert time.monotonic() - started < 10


class Frames(ProducerNode):
    """Emits ``n`` frames from ONE reused buffer (so each must be copied when it is returned): by default
    640x480x4 (1.2 MB, above the object-store threshold), every pixel the frame's index (``fill``)."""

    shape: tuple[int, ...] = (480, 640, 4)

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def open(self) -> None:
        self.i = 0
        self.frame = np.zeros(self.shape, np.uint8)

    def fill(self, i: int) -> Any:
        return i

    def next(self) -> Any:
        if self.i >= self.n:
            raise StopIteration
        self.frame[...] = self.fill(self.i)  # the next frame overwrites the last one's pixels
        self.i += 1
        return self.frame


class Inspect(ProcessorNode):
    """Passes the frame on unchanged, with what it saw: (frame, writable, first pixel)."""

    def process(self, frame: Any) -> Any:
        return frame, bool(frame.flags.writeable), int(frame[0, 0, 0])


class Check(ConsumerNode):
    """Records (index, writable, pixel seen upstream, every pixel of the frame it got equal to it)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def open(self) -> None:
        self.file = open(self.path, "a")  # noqa: SIM115 - closed in close()

    def consume(self, seen: Any) -> None:
        frame, writable, pixel = seen
        self.file.write(json.dumps({"item": [pixel, writable, bool((frame == pixel).all())]}) + "\n")

    def close(self) -> None:
        self.file.close()


async def test_frames_from_a_reused_buffer_arrive_whole_and_read_only_on_ray(engine: str, tmp_path: Path) -> None:
    """Fixed when returned (one copy into the object store), then read in place: read-only on Ray."""
    out = tmp_path / "out.jsonl"
    a = Frames(30)
    c = Check(str(out))(Inspect()(a))
    await asyncio.wait_for(Flow([a], [c], flow_options={"engine": engine}).run(), 60)
    got = recorded(out)
    assert [pixel for pixel, _, _ in got] == list(range(30)) and all(whole for _, _, whole in got)
    assert all(writable is (engine == "local") for _, writable, _ in got), got[:3]


class Paint(ProcessorNode):
    """Writes into its input, as an annotator drawing on the frame it was given would."""

    def process(self, frame: Any) -> Any:
        frame[0, 0] = 255
        return frame


async def test_writing_into_an_input_array_says_to_copy_it(ray_session: None, tmp_path: Path) -> None:
    a = Frames(3)
    c = Recorder(tmp_path / "out.jsonl")(Paint(name="painter")(a))
    with pytest.raises(NodeFailedError, match="painter") as info:
        await asyncio.wait_for(Flow([a], [c], flow_options={"engine": "ray"}).run(), 60)
    assert "read-only" in str(info.value) and "frame.copy()" in str(info.value)
