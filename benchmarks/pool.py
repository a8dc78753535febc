"""Warm pool against fresh processes: start-up of short flows, throughput of long ones, a service.

Run: ``python -m benchmarks.pool`` (``--quick`` for a smoke run).  Measured in the same
run, one after the other:

- one-item flows of 3 tasks (producer -> identity -> consumer) and of 7 tasks
  (5 identities), ``await flow.run()`` timed whole, cold (fresh processes each run)
  and warm (``flow.run(pool=pool)``, the pool started before the timing);
- a long flow (1 M tiny items) both ways: a pool must not slow the stream;
- ``examples/service.py`` answering 50 concurrent requests (a 3-stage flow each),
  with the pool and without: requests/s and p99 latency (the pool measured after one
  round that let it grow to the processes the load needs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import uvloop

import asyncflow
from asyncflow.consumers import VoidConsumer
from asyncflow.core import Flow
from asyncflow.processors import IdentityProcessor
from asyncflow.producers import IntProducer


def _flow(items: int, identities: int) -> Flow:
    node: Any = IntProducer(0, items - 1)
    source = node
    for _ in range(identities):
        node = IdentityProcessor()(node)
    return Flow([source], [VoidConsumer()(node)])


async def _time(items: int, identities: int, pool: asyncflow.Pool | None) -> float:
    flow = _flow(items, identities)
    started = time.perf_counter()
    await flow.run(pool=pool)
    return time.perf_counter() - started


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _service(pool: asyncflow.Pool | None, requests: int) -> dict[str, float]:
    import aiohttp
    from aiohttp import web
    from examples.service import make_app

    runner = web.AppRunner(make_app(pool))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:

            async def ask(k: int) -> None:
                started = time.perf_counter()
                async with session.post(f"http://127.0.0.1:{port}/score", json={"values": [k, k + 1, k + 2]}) as r:
                    assert r.status == 200
                    await r.json()
                latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(ask(k) for k in range(requests)))
            wall = time.perf_counter() - started
    finally:
        await runner.cleanup()
    return {"requests_per_s": requests / wall, "p50_s": _p(latencies, 50), "p99_s": _p(latencies, 99), "wall_s": wall}


async def measure(quick: bool = False) -> dict[str, Any]:
    """Every figure of the module docstring, as a dict."""
    rounds = 3 if quick else 10
    result: dict[str, Any] = {}
    async with asyncflow.Pool(8, max_processes=24) as pool:
        for tasks, identities in ((3, 1), (7, 5)):
            await _time(1, identities, pool)  # the pool's processes import the nodes' modules once
            cold = [await _time(1, identities, None) for _ in range(max(2, rounds // 3))]
            warm = [await _time(1, identities, pool) for _ in range(rounds)]
            result[f"one_item_{tasks}_tasks"] = {
                "cold_median_s": statistics.median(cold),
                "warm_median_s": statistics.median(warm),
                "warm_p90_s": _p(warm, 90),
            }
        n = 200_000 if quick else 1_000_000
        fresh = await _time(n, 1, None)
        pooled = await _time(n, 1, pool)
        result["long_flow"] = {"items": n, "fresh_items_per_s": n / fresh, "pool_items_per_s": n / pooled}
        requests = 20 if quick else 50
        await _service(pool, requests)  # the pool grows to what the load needs (spawns), once
        result["service"] = {
            "requests": requests,
            "pool": await _service(pool, requests),
            "fresh": await _service(None, requests),
        }
    return result


def report(result: dict[str, Any]) -> str:
    """A plain table of ``measure``'s figures."""
    lines = ["warm pool vs fresh processes (2-core machine, same run)", ""]
    for tasks in (3, 7):
        r = result[f"one_item_{tasks}_tasks"]
        lines.append(
            f"one-item flow, {tasks} tasks: cold {r['cold_median_s'] * 1000:7.1f} ms   "
            f"warm {r['warm_median_s'] * 1000:6.1f} ms (p90 {r['warm_p90_s'] * 1000:.1f})   "
            f"{r['cold_median_s'] / r['warm_median_s']:.1f}x"
        )
    r = result["long_flow"]
    lines.append(
        f"long flow, {r['items']:,} tiny items: fresh {r['fresh_items_per_s'] / 1e6:.2f} M/s   "
        f"pool {r['pool_items_per_s'] / 1e6:.2f} M/s (start-up included both ways)"
    )
    s = result["service"]
    for mode in ("pool", "fresh"):
        r = s[mode]
        lines.append(
            f"service, {s['requests']} concurrent requests, {mode:5s}: {r['requests_per_s']:6.1f} req/s   "
            f"p50 {r['p50_s'] * 1000:7.1f} ms   p99 {r['p99_s'] * 1000:7.1f} ms"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    result = uvloop.run(measure(args.quick))
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
