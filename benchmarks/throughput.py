"""Tiny-item throughput of ``IntProducer → IdentityProcessor → VoidConsumer``.

Run: ``python -m benchmarks.throughput [N]`` (default 1 000 000 items).  Prints
items/s for the whole run (start-up included) and for the steady state (from
the first item to the last, as the consumer sees it).
"""

from __future__ import annotations

import sys
import time

import asyncflow
from asyncflow.consumers import VoidConsumer
from asyncflow.core import Flow
from asyncflow.processors import IdentityProcessor
from asyncflow.producers import IntProducer


def measure(n: int) -> tuple[float, float, float]:
    """Return (seconds in run(), busy seconds of the slowest task, items/s over run())."""
    a = IntProducer(0, n - 1, 0)
    b = IdentityProcessor()(a)
    c = VoidConsumer()(b)
    flow = Flow([a], [c])
    started = time.perf_counter()
    asyncflow.run(flow)
    elapsed = time.perf_counter() - started
    stats = flow.stats()
    steady = max(s.wall_seconds for s in stats.values())
    return elapsed, steady, n / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    elapsed, steady, rate = measure(n)
    print(f"IntProducer(0, {n - 1}, 0) -> IdentityProcessor -> VoidConsumer")
    print(f"  run():          {elapsed:8.3f} s   {rate / 1e3:9.1f} k items/s (start-up included)")
    print(f"  longest task:   {steady:8.3f} s   {n / steady / 1e3:9.1f} k items/s (steady state)")


if __name__ == "__main__":
    main()
