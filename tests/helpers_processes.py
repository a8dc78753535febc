"""The check behind the `no_process_left_behind` fixtures (tests/conftest.py, tests/engine_ray/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import psutil
import pytest


def describe(process: psutil.Process) -> str:
    """A process's name and command line ("" once it is gone)."""
    try:
        return f"{process.name()} {' '.join(process.cmdline())}"
    except psutil.Error:
        return ""


def no_process_left(excused: Callable[[psutil.Process], bool] = lambda p: False) -> Iterator[None]:
    """Around one test: fail it if a child process it started (and not ``excused``) is alive 3 s after it ends.

    What is left is killed first, so that one leak does not fail every later test.
    """
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    deadline = time.monotonic() + 3.0
    left: list[psutil.Process] = []
    while time.monotonic() < deadline:
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and not excused(p)]
        if not left:
            break
        time.sleep(0.05)
    if left:
        described = [f"{p.pid} {describe(p)[:120]}" for p in left]
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        pytest.fail("the test left processes behind:\n" + "\n".join(described))
