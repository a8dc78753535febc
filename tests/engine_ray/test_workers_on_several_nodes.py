"""The Ray engine on a multi-node Ray: a head and two worker nodes started on this machine
(``ray.cluster_utils.Cluster``), 1 CPU each, the workers with a custom resource ``side``.

Named to run after the other Ray tests (pytest takes files in name order): it shuts the
session's local Ray down for its own cluster, and ``ray_session`` starts it again if a
later test needs it.  Its last test removes a worker node.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncflow.core import Flow, FlowError, ProcessorNode, WorkerDiedError
from tests.helpers import CountProducer, Recorder, recorded

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")


class Placed(ProcessorNode):
    """Squares its input (as a 512 KiB array with ``wide``); ``open()`` appends ``<pid> <Ray node id>`` to ``log``."""

    def __init__(self, log: str, wide: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = log
        self.wide = wide

    def open(self) -> None:
        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
        with open(self.log, "a") as file:
            file.write(f"{os.getpid()} {node}\n")

    def process(self, x: int) -> Any:
        if self.wide:  # big enough to travel through the object store, from node to node
            import numpy

            return numpy.full(1 << 16, x * x, dtype=numpy.int64)
        return x * x


class First(ProcessorNode):
    """The first value of an array."""

    def process(self, array: Any) -> int:
        return int(array[0])


class FirstAndWhence(ProcessorNode):
    """The first value of an array, and whether it came in a shared slot (a mapping of /dev/shm)."""

    def process(self, array: Any) -> list[Any]:
        return [int(array[0]), isinstance(array.base, mmap.mmap)]


def placements(log: Path) -> list[str]:
    return [line.split()[1] for line in log.read_text().splitlines()]


class Cluster:
    def __init__(self, cluster: Any, workers: list[Any]) -> None:
        self.cluster = cluster
        self.workers = workers

    def free(self) -> dict[str, float]:
        return {k: v for k, v in ray.available_resources().items() if k in ("CPU", "side")}

    def total(self) -> dict[str, float]:
        return {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "side")}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if ray.is_initialized():
        ray.shutdown()  # the session's local Ray (started again by ray_session when a later test needs it)
    head_args = {
        "num_cpus": 1,
        "include_dashboard": False,
        # A node that dies is declared dead after ~1.5 s instead of Ray's default ~15 s.
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3},
    }
    made = cluster_utils.Cluster(initialize_head=True, head_node_args=head_args)
    try:
        workers = [made.add_node(num_cpus=1, resources={"side": 1}) for _ in range(2)]
        ray.init(address=made.address, log_to_driver=False, configure_logging=False)
        made.wait_for_nodes()
        yield Cluster(made, workers)
    finally:
        ray.shutdown()
        made.shutdown()


async def test_tasks_spread_over_the_nodes_with_the_local_engines_results(cluster: Cluster, tmp_path: Path) -> None:
    """5 tasks of half a CPU each (the share that places them: 3 CPUs on 3 nodes) need three nodes;
    the ``side`` tasks can only go to the two worker nodes, one each; their 512 KiB arrays cross to
    the node of the next task through Ray's object store."""
    results: dict[str, list[Any]] = {}
    for engine in ("local", "ray"):
        out, log = tmp_path / f"{engine}.jsonl", tmp_path / f"{engine}.log"
        a = CountProducer(300)
        b = Placed(str(log), wide=True, nb_tasks=2, resources={"side": 1})(a)
        c = Recorder(out)(First()(b))
        await asyncio.wait_for(Flow([a], [c], flow_options={"engine": engine}).run(), 120)
        results[engine] = recorded(out)
        if engine == "ray":
            where = placements(log)
            assert sorted(where) == sorted(w.node_id for w in cluster.workers), where
    assert results["ray"] == results["local"] == [i * i for i in range(300)]
    deadline = time.monotonic() + 10
    while cluster.free() != cluster.total():  # every actor is gone: what they reserved is free again
        assert time.monotonic() < deadline, (cluster.free(), cluster.total())
        await asyncio.sleep(0.1)


async def test_arrays_for_another_node_go_through_the_object_store(cluster: Cluster, tmp_path: Path) -> None:
    """Shared slots are for tasks on one machine: the arrays of a task on a worker node, read by a task
    on the head node, travel through Ray's object store."""
    out, log = tmp_path / "out.jsonl", tmp_path / "log"
    a = CountProducer(40)
    b = Placed(str(log), wide=True, resources={"side": 1})(a)
    c = Recorder(out)(FirstAndWhence(resources={"node:__internal_head__": 0.01})(b))
    await asyncio.wait_for(Flow([a], [c], flow_options={"engine": "ray"}).run(), 120)
    assert recorded(out) == [[i * i, False] for i in range(40)]


async def test_a_flow_that_no_node_can_hold_fails_at_once(cluster: Cluster, tmp_path: Path) -> None:
    """3 CPUs in the cluster, but 1 per node: a task asking for 2 can never be placed."""
    a = CountProducer(10)
    c = Recorder(tmp_path / "out.jsonl")(Placed(str(tmp_path / "log"), name="greedy", resources={"CPU": 2})(a))
    started = time.monotonic()
    with pytest.raises(FlowError, match="can never be placed") as info:
        await asyncio.wait_for(Flow([a], [c], flow_options={"engine": "ray"}).run(), 60)
    assert "greedy" in str(info.value) and "CPU: 2 asked, 1 at most on one node" in str(info.value)
    assert time.monotonic() - started < 10


async def test_losing_a_node_names_its_tasks_within_seconds(cluster: Cluster, tmp_path: Path) -> None:
    """Last in the module: it removes a worker node."""
    out, log = tmp_path / "out.jsonl", tmp_path / "log"
    a = CountProducer(None, delay=0.002)
    b = Placed(str(log), nb_tasks=2, resources={"side": 1}, name="far")(a)
    c = Recorder(out)(b)
    run = asyncio.ensure_future(Flow([a], [c], flow_options={"engine": "ray"}).run())
    deadline = time.monotonic() + 60
    while len(recorded(out)) < 50:
        assert time.monotonic() < deadline and not run.done(), "the flow did not start"
        await asyncio.sleep(0.05)
    lines = log.read_text().splitlines()
    victim = next(w for w in cluster.workers if w.node_id == lines[0].split()[1])
    cluster.cluster.remove_node(victim, allow_graceful=False)  # as if the machine crashed
    removed = time.monotonic()
    with pytest.raises(WorkerDiedError) as info:
        await asyncio.wait_for(run, 60)
    assert time.monotonic() - removed < 15
    message = str(info.value)
    assert "is gone" in message and "far[" in message and info.value.node == "far", message
    items = recorded(out)
    # In order, each once; the rows that were on the lost node are missing (later ones that the other
    # worker had already passed on may have arrived).
    roots = [round(x**0.5) for x in items]
    assert len(items) >= 50 and roots == sorted(set(roots))
    assert all(r * r == x for r, x in zip(roots, items, strict=True))
    deadline = time.monotonic() + 15
    while cluster.free() != cluster.total():  # no actor left on the nodes that remain
        assert time.monotonic() < deadline, (cluster.free(), cluster.total())
        await asyncio.sleep(0.1)
