"""GPU tasks get a device each through CUDA_VISIBLE_DEVICES (with a faked device list)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from asyncflow.core import ConsumerNode, Flow, FlowError, ProcessorNode
from asyncflow.engine.devices import assign_devices, available_gpus
from tests.helpers import CountProducer


class ReportDevice(ProcessorNode):
    """Returns the CUDA_VISIBLE_DEVICES its process sees."""

    def process(self, x: int) -> Any:
        return os.environ.get("CUDA_VISIBLE_DEVICES")


class CollectSet(ConsumerNode):
    """Writes the distinct values it saw to a file at close."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def open(self) -> None:
        self.seen: set[str] = set()

    def consume(self, value: Any) -> None:
        self.seen.add(repr(value))

    def close(self) -> None:
        Path(self.path).write_text("\n".join(sorted(self.seen)))


def test_available_gpus_respects_the_users_setting() -> None:
    assert available_gpus(None, {"CUDA_VISIBLE_DEVICES": "2,5"}) == ["2", "5"]
    assert available_gpus(None, {"CUDA_VISIBLE_DEVICES": ""}) == []
    assert available_gpus(None, {"CUDA_VISIBLE_DEVICES": "-1"}) == []
    assert available_gpus(None, {"CUDA_VISIBLE_DEVICES": "1,-1,3"}) == ["1"]
    assert available_gpus(("7",), {"CUDA_VISIBLE_DEVICES": "2"}) == ["7"]


def test_assign_gives_each_gpu_task_its_own_device() -> None:
    gpu = ReportDevice(nb_tasks=2, device_type="gpu", name="g")
    cpu = ReportDevice(name="c")
    assert assign_devices([("g[0]", gpu), ("c", cpu), ("g[1]", gpu)], ["3", "4"]) == ["3", None, "4"]
    assert assign_devices([("g[0]", gpu), ("g[1]", gpu)], ["3"]) == ["3", ""]


def test_no_device_without_fallback_is_a_clear_error() -> None:
    strict = ReportDevice(device_type="gpu", cpu_fallback=False, name="strict")
    with pytest.raises(FlowError, match=r"'strict'.*needs a GPU and no GPU is available"):
        assign_devices([("strict", strict)], [])


async def test_gpu_workers_see_one_device_each(tmp_path: Path) -> None:
    out = tmp_path / "seen.txt"
    a = CountProducer(40)
    b = ReportDevice(nb_tasks=3, device_type="gpu")(a)
    c = CollectSet(str(out))(b)
    await Flow([a], [c], flow_options={"gpus": [0, 1]}).run()
    # two workers get a device each, the third falls back to the CPU (no GPU visible)
    assert set(out.read_text().splitlines()) == {"'0'", "'1'", "''"}


async def test_gpu_node_without_fallback_fails_the_run_before_starting(tmp_path: Path) -> None:
    a = CountProducer(5)
    b = ReportDevice(device_type="gpu", cpu_fallback=False, name="needs_gpu")(a)
    c = CollectSet(str(tmp_path / "x"))(b)
    with pytest.raises(FlowError, match="needs_gpu"):
        await Flow([a], [c], flow_options={"gpus": []}).run()


async def test_cpu_nodes_keep_the_inherited_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "9")
    out = tmp_path / "seen.txt"
    a = CountProducer(5)
    b = ReportDevice()(a)
    c = CollectSet(str(out))(b)
    await Flow([a], [c]).run()
    assert out.read_text().splitlines() == ["'9'"]
