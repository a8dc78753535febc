"""Test-wide fixtures: uvloop for every async test, and no process left behind."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psutil
import pytest
import uvloop


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Mapping[str, Callable[[], Any]]:
    """Run async tests on uvloop, the loop asyncflow is built for."""
    return {"uvloop": uvloop.new_event_loop}


def _children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Fail a test that leaves a child process (or zombie) alive after it ends."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    deadline = time.monotonic() + 3.0
    left: list[psutil.Process] = []
    while time.monotonic() < deadline:
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        if not left:
            break
        time.sleep(0.05)
    if left:
        described = []
        for p in left:
            try:
                described.append(f"{p.pid} {p.status()} {' '.join(p.cmdline())[:120]}")
            except psutil.Error:
                described.append(str(p.pid))
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        pytest.fail("the test left processes behind:\n" + "\n".join(described))
