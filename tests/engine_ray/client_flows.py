"""The driver of test_workers_through_ray_client, in a process of its own: ``python -m
tests.engine_ray.client_flows ADDRESS FOLDER`` prints what its two flows delivered, as JSON.

A Ray Client call that never returns blocks the calling thread in gRPC, where no signal
reaches Python (pytest-timeout cannot end it): in a child process the test can kill it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from typing import Any

from asyncflow.consumers import ResultsConsumer
from asyncflow.core import Flow, ProcessorNode
from tests.engine_ray.test_code_resources_arrays import Frames
from tests.helpers import CountProducer


class Half(ProcessorNode):
    """The top half of its frame (a new array: its task fixes it)."""

    def process(self, frame: Any) -> Any:
        return frame[: frame.shape[0] // 2].copy()


async def flows(address: str, folder: str, module: str) -> dict[str, Any]:
    # The node class is in a module the cluster can only get from working_dir: its folder
    # goes off sys.path once imported, so the driver's import path does not carry it.
    sys.path.insert(0, folder)
    try:
        nodes = importlib.import_module(module)
    finally:
        sys.path.remove(folder)
    import ray

    a = CountProducer(30)
    c = ResultsConsumer()(nodes.Triple()(a))
    options = {"engine": "ray", "ray_address": address, "ray_runtime_env": {"working_dir": folder}}
    flow = Flow([a], [c], flow_options=options)
    run = asyncio.ensure_future(flow.run())
    tripled = [x async for x in flow.results(c)]
    await run
    released = not ray.is_initialized()

    frames = Frames(20)
    c = ResultsConsumer()(Half()(frames))
    flow = Flow([frames], [c], flow_options={"engine": "ray", "ray_address": address})
    run = asyncio.ensure_future(flow.run())
    kept = [x async for x in flow.results(c)]
    await run
    return {
        "tripled": tripled,
        "released": released,
        "shapes": [list(f.shape) for f in kept],
        "whole": [bool((f == i).all()) for i, f in enumerate(kept)],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(flows(sys.argv[1], sys.argv[2], sys.argv[3]))))
