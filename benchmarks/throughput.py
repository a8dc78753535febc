"""Tiny-item throughput of ``IntProducer → IdentityProcessor → VoidConsumer``.

Run: ``python -m benchmarks.throughput [N]`` (default 1 000 000 items).  Prints
items/s for the whole run (start-up included) and for the steady state (from
the first item to the last, as the consumer sees it), twice: with the built-in
nodes, whose batch methods the engine calls once a block of rows, and with
per-item subclasses (a call per item, as a node without batch methods gets).
"""

from __future__ import annotations

import sys

from .workloads import tiny_items


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"IntProducer(0, {n - 1}, 0) -> IdentityProcessor -> VoidConsumer")
    for label, per_item in (("batch methods", False), ("per-item calls", True)):
        rate = tiny_items(n, per_item=per_item)
        print(
            f"  {label:15s} run(): {rate.total_s:7.3f} s {n / rate.total_s / 1e6:6.2f} M items/s (start-up included); "
            f"steady {rate.per_s / 1e6:6.2f} M items/s"
        )


if __name__ == "__main__":
    main()
