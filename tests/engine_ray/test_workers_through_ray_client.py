"""The Ray engine through Ray Client (``ray_address="ray://HOST:PORT"``), as a driver outside a cluster
reaches it: a head started here with ``ray start --head --ray-client-server-port``, the node classes
shipped in ``ray_runtime_env["working_dir"]``, arrays back to the driver through the object store.

Opt-in: ``ASYNCFLOW_RAY_CLIENT_TESTS=1 make test`` (or pytest on this file with it set).  A Ray
Client call sometimes never returns: it blocks in gRPC, where pytest-timeout cannot reach it.  Run
alone, about one run in a dozen hung so; after the other Ray tests in the full suite, the first
attempt hung in one of the two clean-clone runs.  Until that is understood it stays out of the
default suite, which must never hang.  The driver runs in a child process (``client_flows.py``)
with 75 s; if it has not finished, it and the head are killed and the test tries once more on a
new head.

Named to run last of the Ray tests (pytest takes files in name order): it shuts the session's
local Ray down, if one is still up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_ray.conftest import NODES

pytestmark = pytest.mark.skipif(
    not os.environ.get("ASYNCFLOW_RAY_CLIENT_TESTS"),
    reason="opt-in (ASYNCFLOW_RAY_CLIENT_TESTS=1): Ray Client calls sometimes hang in gRPC (see the module doc)",
)

ray = pytest.importorskip("ray")
pytest.importorskip("numpy")
pytest.importorskip("grpc", reason="Ray Client needs ray[client]")

ROOT = Path(__file__).resolve().parents[2]
_ATTEMPT = 75.0  # seconds the driver gets (it takes 10-15 s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def ray_head(log: Path) -> Iterator[str]:
    """A one-node Ray head with a Ray Client server, in a process group of its own (``--block``).

    Its files go to a temporary folder of its own: ``ray start`` leaves the head's address in its
    temp folder (``ray_current_cluster``), and in /tmp/ray a later ``ray.init()`` would try to join
    the head after it is gone instead of starting the session's local Ray.
    """
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray_bin is not None
    client_port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayc-")  # short: Ray's socket paths live under it
    with open(log, "w") as out:
        head = subprocess.Popen(
            [
                ray_bin, "start", "--head", "--block", f"--port={_free_port()}", f"--temp-dir={temp_dir}",
                f"--ray-client-server-port={client_port}", "--num-cpus=2", "--include-dashboard=false",
            ],
            stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, RAY_AUTH_MODE="disabled"),
            start_new_session=True,
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
        _kill_group(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.timeout(2 * (_ATTEMPT + 60))
def test_a_flow_through_ray_client_with_its_code_in_the_runtime_env(tmp_path: Path) -> None:
    """The node class is in a module the cluster can only get from ``working_dir`` (its folder is not on
    the driver's sys.path any more); the frames come back whole through the object store (the driver is
    on no node of the cluster, so no task shares slots with it)."""
    if ray.is_initialized():
        ray.shutdown()  # the session's local Ray (ray_session starts it again for later tests)
    module = f"client_nodes_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / f"{module}.py").write_text(NODES)
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "tests.engine_ray.client_flows", "", str(folder), module]
    for attempt in (1, 2):
        with ray_head(tmp_path / f"head-{attempt}.log") as address:
            command[3] = address
            driver = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT, start_new_session=True
            )
            try:
                out, err = driver.communicate(timeout=_ATTEMPT)
            except subprocess.TimeoutExpired:
                warnings.warn(f"Ray Client hung (attempt {attempt} of 2)", stacklevel=1)
                continue
            finally:
                _kill_group(driver)
        assert driver.returncode == 0, err.decode()[-3000:]
        got = json.loads(out.decode().strip().splitlines()[-1])
        assert got["tripled"] == [3 * i for i in range(30)]
        assert got["released"], "the flow let go of the Ray it connected to"
        assert got["shapes"] == [[240, 640, 4]] * 20 and all(got["whole"])
        return
    pytest.fail("Ray Client hung twice")
