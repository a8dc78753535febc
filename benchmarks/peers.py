"""Peer libraries on the tiny-item chain: videoflow 0.2.10 and pypeln.

- ``videoflow_rate(n)``: videoflow 0.2.10, ``IntProducer(0, n-1, 0) → IdentityProcessor →``
  a counting consumer, ``BATCH`` flow (see ``benchmarks._peer_videoflow``: it has to
  fork, it cannot run under spawn).
- ``pypeln_rate(n)``: ``pypeln.process.map`` x2 over ``range(n)``, spawn, the last
  stage iterated by its parent (``benchmarks._peer_pypeln``).

Each runs in a fresh interpreter (``python -m benchmarks._peer_…``) in a scratch
directory, so its imports, loggers, log files and processes stay out of the
benchmark's own process; the peer stamps its items with ``time.monotonic_ns()``
and the figures are built as for asyncflow and the hand-written floors.  When a
peer is not installed or fails, ``Unavailable`` is raised with the reason.

Installing them: ``make bench`` installs ``.[bench]`` (pypeln is in the extra)
and then videoflow on its own, ``pip install --no-deps videoflow==0.2.10`` plus
``opencv-python-headless`` (pinned as in the ``video`` extra), ``requests`` and
``six``: videoflow's metadata asks for the full ``opencv-python`` (GUI build),
which clashes with a headless OpenCV in the same environment and is not needed
here (videoflow imports ``cv2`` only because its packages import their video
nodes eagerly).

Run ``python -m benchmarks.peers [--quick]`` to print them alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from ._common import Rate, last_line, run_isolated, steady_rate

__all__ = ["VIDEOFLOW_VERSION", "Unavailable", "pypeln_rate", "videoflow_rate"]

VIDEOFLOW_VERSION = "0.2.10"


class Unavailable(Exception):
    """A peer could not be measured here; ``str(exc)`` says why."""


def _installed(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise Unavailable(f"{dist} is not installed (make bench installs it)") from None


def _run_child(module: str, n: int, timeout: float) -> Rate:
    with tempfile.TemporaryDirectory(prefix="asyncflow-bench-") as scratch:
        out = Path(scratch) / "result.json"
        try:
            code, stdout, stderr = run_isolated([sys.executable, "-m", module, str(n), str(out)], timeout, cwd=scratch)
        except TimeoutError:
            raise Unavailable(f"did not finish {n} items within {timeout:.0f} s") from None
        if code != 0 or not out.exists():
            raise Unavailable(f"exit code {code}: {last_line(stderr or stdout)}")
        data = json.loads(out.read_text())
    if data["count"] != n:
        raise Unavailable(f"consumer got {data['count']} items, expected {n}")
    return steady_rate(n, 1, data["t_start"], data["t_first"], data["t_last"], data["t_end"])


def videoflow_rate(n: int, timeout: float = 300.0) -> Rate:
    """videoflow 0.2.10 on ``IntProducer → IdentityProcessor → consumer``; items/s (raises ``Unavailable``)."""
    version = _installed("videoflow")
    if version != VIDEOFLOW_VERSION:
        raise Unavailable(f"videoflow {version} is installed, the benchmark compares {VIDEOFLOW_VERSION}")
    return _run_child("benchmarks._peer_videoflow", n, timeout)


def pypeln_rate(n: int, timeout: float = 300.0) -> Rate:
    """``pypeln.process.map`` x2 over ``range(n)``; items/s (raises ``Unavailable``)."""
    _installed("pypeln")
    return _run_child("benchmarks._peer_pypeln", n, timeout)


def versions() -> dict[str, str | None]:
    """Installed versions of the peers (``None``: not installed)."""
    found: dict[str, str | None] = {}
    for dist in ("videoflow", "pypeln"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few seconds")
    args = parser.parse_args(argv)
    for label, fn, n in (("videoflow", videoflow_rate, 20_000), ("pypeln", pypeln_rate, 10_000)):
        size = n // 10 if args.quick else n
        try:
            rate = fn(size)
        except Unavailable as exc:
            print(f"{label:<12} unavailable: {exc}")
        else:
            print(f"{label:<12} {rate.per_s:>10,.0f} items/s   start-up {rate.startup_s:6.3f} s   ({size} items)")


if __name__ == "__main__":
    main()
