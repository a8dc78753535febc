"""The Ray engine through Ray Client (``ray_address="ray://HOST:PORT"``), as a driver outside a cluster
reaches it: a head started here with ``ray start --head --ray-client-server-port``, the node classes
shipped in ``ray_runtime_env["working_dir"]``, arrays back to the driver through the object store.

Named to run last of the Ray tests (pytest takes files in name order): it shuts the session's
local Ray down, if one is still up, to connect through the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncflow.consumers import ResultsConsumer
from asyncflow.core import Flow, ProcessorNode
from tests.engine_ray.test_code_resources_arrays import Frames
from tests.helpers import CountProducer

ray = pytest.importorskip("ray")
np = pytest.importorskip("numpy")
pytest.importorskip("grpc", reason="Ray Client needs ray[client]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def client_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-node Ray head with a Ray Client server, in a process group of its own (``--block``).

    Its files go to a temporary folder of its own: ``ray start`` leaves the head's address in its
    temp folder (``ray_current_cluster``), and in /tmp/ray a later ``ray.init()`` would try to join
    the head after it is gone instead of starting the session's local Ray."""
    if ray.is_initialized():
        ray.shutdown()  # the session's local Ray (ray_session starts it again for later tests)
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray_bin is not None
    client_port = _free_port()
    env = dict(os.environ, RAY_AUTH_MODE="disabled")  # Ray Client sends no token
    log = tmp_path_factory.mktemp("head") / "head.log"
    temp_dir = tempfile.mkdtemp(prefix="rayc-")  # short: Ray's socket paths live under it
    with open(log, "w") as out:
        head = subprocess.Popen(
            [
                ray_bin, "start", "--head", "--block", f"--port={_free_port()}", f"--temp-dir={temp_dir}",
                f"--ray-client-server-port={client_port}", "--num-cpus=2", "--include-dashboard=false",
            ],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", client_port)) == 0:
                    break
            assert head.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        yield f"ray://127.0.0.1:{client_port}"
    finally:
        # The head and everything it started, at once (SIGTERM takes --block seconds): nothing of it
        # outlives the group, and the object store's memory is an unlinked file.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


class Half(ProcessorNode):
    """The top half of its frame (a new array: its task fixes it)."""

    def process(self, frame: Any) -> Any:
        return frame[: frame.shape[0] // 2].copy()


async def test_a_flow_through_ray_client_with_its_code_in_the_runtime_env(
    client_address: str, hidden_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node class is in a module the cluster can only get from ``working_dir`` (its folder is not on
    the driver's sys.path any more); the frames come back whole through the object store (the driver is
    on no node of the cluster, so no task shares slots with it)."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    folder = str(Path(hidden_module.__file__).parent)
    a = CountProducer(30)
    c = ResultsConsumer()(hidden_module.Triple()(a))
    options = {"engine": "ray", "ray_address": client_address, "ray_runtime_env": {"working_dir": folder}}
    flow = Flow([a], [c], flow_options=options)
    run = asyncio.ensure_future(flow.run())
    got = [x async for x in flow.results(c)]
    await asyncio.wait_for(run, 120)
    assert got == [3 * i for i in range(30)]
    assert not ray.is_initialized(), "the flow let go of the Ray it connected to"

    frames = Frames(20)
    c = ResultsConsumer()(Half()(frames))
    flow = Flow([frames], [c], flow_options={"engine": "ray", "ray_address": client_address})
    run = asyncio.ensure_future(flow.run())
    kept = [x async for x in flow.results(c)]
    await asyncio.wait_for(run, 120)
    assert [f.shape for f in kept] == [(240, 640, 4)] * 20
    assert all((f == i).all() for i, f in enumerate(kept))
