"""Test-wide fixtures: uvloop for every async test, and no process left behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import uvloop

from tests.helpers_processes import no_process_left


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Mapping[str, Callable[[], Any]]:
    """Run async tests on uvloop, the loop asyncflow is built for."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Fail a test that leaves a child process (or zombie) alive after it ends."""
    yield from no_process_left()


@pytest.fixture
def tracker_stopped_after() -> Iterator[None]:
    """Slots made in the test process start a resource tracker: stop it after the test, as a run does."""
    from multiprocessing import resource_tracker

    tracker: Any = resource_tracker._resource_tracker  # type: ignore[attr-defined]
    running = getattr(tracker, "_fd", None) is not None
    yield
    if not running and getattr(tracker, "_fd", None) is not None:
        tracker._stop()
