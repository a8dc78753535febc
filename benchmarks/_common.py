"""Shared pieces of the benchmarks: the result type, the CPU spin, clocks and machine facts.

Every figure is taken with ``time.monotonic_ns()``: on Linux it reads the
system-wide ``CLOCK_MONOTONIC``, so a stamp taken in one process can be compared
with one taken in another (``perf_counter`` promises no such thing).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FRAME_SHAPE",
    "Rate",
    "calibrate_spin",
    "last_line",
    "latency_summary",
    "machine_info",
    "now_ns",
    "read_json",
    "run_isolated",
    "spin",
    "steady_rate",
    "write_json",
]

#: One 1080p RGB frame, uint8: 1080 x 1920 x 3 = 6 220 800 bytes.
FRAME_SHAPE: tuple[int, int, int] = (1080, 1920, 3)

now_ns = time.monotonic_ns


@dataclass(frozen=True)
class Rate:
    """A throughput figure: ``per_s`` items (or frames) a second in the steady state.

    ``per_s`` counts from the first item's arrival at the consumer to the end of
    the stream there; ``startup_s`` is from the start of the run (processes not
    yet started) to that first arrival; ``total_s`` is the whole run as the caller
    saw it, start-up and shut-down included.
    """

    items: int
    per_s: float
    steady_s: float
    startup_s: float
    total_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def steady_rate(items: int, first_items: int, t_start: int, t_first: int, t_last: int, t_end: int) -> Rate:
    """Build a ``Rate`` from monotonic-ns stamps.

    ``first_items``: how many items arrived with the first message (1, or a batch),
    not counted in the steady state since their transfer started before ``t_first``.
    """
    steady_ns = max(t_last - t_first, 1)
    counted = max(items - first_items, 1)
    return Rate(
        items=items,
        per_s=counted / (steady_ns / 1e9),
        steady_s=steady_ns / 1e9,
        startup_s=(t_first - t_start) / 1e9,
        total_s=(t_end - t_start) / 1e9,
    )


def spin(loops: int) -> int:
    """Pure-Python busy work: ``loops`` iterations of integer arithmetic (holds the GIL)."""
    acc = 0
    for i in range(loops):
        acc = (acc + i * i) & 0xFFFF
    return acc


def calibrate_spin(seconds: float = 0.004, trials: int = 5) -> int:
    """How many ``spin`` loops take ``seconds`` on this machine (best of ``trials``, after a warm-up)."""
    probe = 100_000
    spin(probe)
    best = float("inf")
    for _ in range(trials):
        started = time.perf_counter()
        spin(probe)
        best = min(best, time.perf_counter() - started)
    return max(1, round(probe * seconds / best))


def machine_info() -> dict[str, Any]:
    """What the results were measured on."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or _cpu_model(),
    }
    try:
        info["loadavg"] = list(os.getloadavg())
    except OSError:
        pass
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON (atomically: a reader never sees half a file)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False))
    tmp.replace(target)


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


def latency_summary(latencies_ns: list[int]) -> dict[str, float]:
    """p50 / p90 / p99 / max of latencies in ms (nearest-rank percentiles), plus the count."""
    if not latencies_ns:
        return {"count": 0, "p50_ms": float("nan"), "p90_ms": float("nan"), "p99_ms": float("nan"),
                "max_ms": float("nan"), "mean_ms": float("nan")}
    ordered = sorted(latencies_ns)
    n = len(ordered)

    def rank(percent: int) -> float:
        # nearest rank: the ceil(percent/100 * n)-th smallest, in integers (no float rounding)
        index = -(-percent * n // 100) - 1
        return ordered[min(n - 1, max(0, index))] / 1e6

    return {
        "count": n,
        "p50_ms": rank(50),
        "p90_ms": rank(90),
        "p99_ms": rank(99),
        "max_ms": ordered[-1] / 1e6,
        "mean_ms": sum(ordered) / n / 1e6,
    }


def run_isolated(args: list[str], timeout: float, cwd: str | os.PathLike[str] | None = None) -> tuple[int, str, str]:
    """Run ``args`` (a Python child) in its own process group, the repository on its ``PYTHONPATH``.

    Returns (exit code, stdout, stderr).  On timeout the whole group is killed (the
    child and any process it started, so none is left behind) and ``TimeoutError``
    is raised.
    """
    import signal
    import subprocess

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        args, cwd=cwd if cwd is not None else root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise TimeoutError(f"{' '.join(args[1:3])} did not finish within {timeout:.0f} s") from None
    return proc.returncode, out, err


def last_line(text: str) -> str:
    """The last non-blank line of ``text`` (what an error message says), at most 200 characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"
