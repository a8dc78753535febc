"""The Ray engine's tests: skipped without Ray; one local Ray (2 CPUs, no dashboard) per session."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest

ray = pytest.importorskip("ray")

_RAY_WORDS = ("ray", "raylet", "gcs_server", "plasma", "dashboard", "log_monitor", "runtime_env")


def _is_ray(process: psutil.Process) -> bool:
    try:
        text = " ".join(process.cmdline()) + " " + process.name()
    except psutil.Error:
        return True
    return any(word in text for word in _RAY_WORDS)


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """As in tests/conftest.py, but Ray's own daemons and workers are the session's, not the test's."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    deadline = time.monotonic() + 3.0
    left: list[psutil.Process] = []
    while time.monotonic() < deadline:
        left = [
            p for p in psutil.Process().children(recursive=True) if p.pid not in before and not _is_ray(p)
        ]
        if not left:
            break
        time.sleep(0.05)
    assert not left, f"the test left processes behind: {[p.pid for p in left]}"


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A local Ray that the flows of the session share (a flow leaves a Ray it did not start running)."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()
