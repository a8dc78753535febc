"""Running a measurement in a child interpreter of its own process group, and small helpers the live benchmarks share.

Each run is a fresh interpreter in a new session (its own process group), so that
whatever it starts (task processes, a videoflow engine) is killed with it on a
timeout, an error or the end: a benchmark never leaves a process behind.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["_error", "_kill_group", "_percentile", "_run_group", "_tail"]


def _run_group(args: list[str], timeout: float, cwd: Path) -> tuple[int, str, str]:
    """Run ``args`` in its own process group; the whole group is killed on timeout, on any error, and after it."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        raise TimeoutError(f"did not finish within {timeout:.0f} s (killed with its processes)") from None
    except BaseException:
        _kill_group(proc.pid)
        proc.communicate()
        raise
    _kill_group(proc.pid)  # anything the run left behind in its group (normally nothing)
    return proc.returncode, out, err


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = math.ceil(q / 100 * len(ordered)) - 1
    return ordered[min(len(ordered) - 1, max(0, index))]


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
