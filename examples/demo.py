"""The seed's example, run by ``make demo``: 41 integers through three processes.

    IntProducer(0, 40, 0.1) -> IdentityProcessor -> CommandlineConsumer

Each node runs in its own OS process; the numbers appear one every 0.1 s as
they reach the consumer, then a per-task summary is printed.
"""

from __future__ import annotations

import time

import asyncflow
from asyncflow.consumers import CommandlineConsumer
from asyncflow.core import Flow
from asyncflow.processors import IdentityProcessor
from asyncflow.producers import IntProducer


def main() -> None:
    a = IntProducer(0, 40, 0.1)
    b = IdentityProcessor()(a)
    c = CommandlineConsumer(sep=" ", end=" ")(b)
    flow = Flow([a], [c])
    print(f"running {flow!r}, one process per node (Ctrl-C stops it gracefully)")
    started = time.perf_counter()
    asyncflow.run(flow)
    elapsed = time.perf_counter() - started
    print(f"\ndone in {elapsed:.2f} s")
    for task, stats in flow.stats().items():
        print(f"  {task:<24} items {stats.processed:>4}   busy {stats.busy_seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
