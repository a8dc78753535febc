"""The Ray engine's tests: skipped without Ray; one local Ray (2 CPUs, no dashboard) per session."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers_processes import describe, no_process_left

ray = pytest.importorskip("ray")

#: What Ray's own processes look like (daemons, agents, idle workers): they belong to the session's Ray.
_RAY_MARKS = ("raylet", "gcs_server", "/ray/", "ray::", "ray.util.client.server")
#: The process title of a flow's actor: none may outlive the flow that started it.
ACTOR_MARK = "TaskRunnerActor"


def is_ray_daemon(process: psutil.Process) -> bool:
    """Ray's own process (not a flow's actor): it may stay for the session."""
    text = describe(process)
    if not text:
        return True  # already gone
    return ACTOR_MARK not in text and any(mark in text for mark in _RAY_MARKS)


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """As in tests/conftest.py, but Ray's daemons and idle workers are the session's, not the test's.

    A flow's actors are not excused: they must be gone once ``run()`` has returned.
    """
    yield from no_process_left(excused=is_ray_daemon)


def start_local_ray() -> None:
    """The session's local Ray: 2 CPUs, no dashboard (a flow leaves a Ray it did not start running)."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)


@pytest.fixture(scope="session")
def _ray_owner() -> Iterator[None]:
    """Shuts down whatever Ray the session's tests left connected."""
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def ray_session(_ray_owner: None) -> Iterator[None]:
    """A local Ray that the flows of the session share; started again after a module that used another
    (test_workers_on_several_nodes connects to a multi-node cluster of its own)."""
    start_local_ray()
    yield


@pytest.fixture(params=["local", "ray"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test that takes it runs on both engines (Ray: the session's Ray)."""
    if request.param == "ray":
        request.getfixturevalue("ray_session")
    yield request.param


NODES = '''
from asyncflow.core import ProcessorNode

class Triple(ProcessorNode):
    def process(self, x):
        return 3 * x
'''


@pytest.fixture
def hidden_module(tmp_path: Path) -> Iterator[Any]:
    """A module of node classes imported through a folder on sys.path, which is then taken off it:
    the driver has the module, a worker that was not given the folder cannot import it."""
    name = f"app_nodes_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / f"{name}.py").write_text(NODES)
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))
    yield module
    sys.modules.pop(name, None)
