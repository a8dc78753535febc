"""A small web service that runs a flow per request on a shared pool of warm processes.

    python -m examples.service [--port 8080] [--no-pool]
    curl -s localhost:8080/score -d '{"values": [1, 2, 3]}'
    -> {"scores": [..., ..., ...], "ms": 4.1}

Each request runs ``IterableProducer(values) -> Normalize -> Score -> ResultsConsumer``,
three tasks in processes of their own, as any flow does; with the pool
(``asyncflow.Pool``, the default here) those processes are warm, so a request pays
milliseconds of start-up instead of the hundreds that spawning three interpreters
costs.  ``--no-pool`` runs each request's flow on fresh processes, for comparison
(``benchmarks/service.py`` measures both).  aiohttp serves it, as it serves the
web view (``asyncflow.monitor.WebView``): the ``web`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from typing import Any

from aiohttp import web

import asyncflow
from asyncflow.consumers import ResultsConsumer
from asyncflow.core import Flow, ProcessorNode
from asyncflow.producers import IterableProducer

POOL: web.AppKey[asyncflow.Pool | None] = web.AppKey("pool", asyncflow.Pool | None)


class Normalize(ProcessorNode):
    """Scales a value into 0..1 against ``scale`` (a stand-in for pre-processing)."""

    def __init__(self, scale: float = 100.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def process(self, x: float) -> float:
        return min(1.0, max(0.0, float(x) / self.scale))


class Score(ProcessorNode):
    """A logistic score of a normalized value (a stand-in for a model)."""

    def process(self, x: float) -> float:
        return round(1.0 / (1.0 + math.exp(-12.0 * (x - 0.5))), 6)


def scoring_flow(values: list[float]) -> tuple[Flow, ResultsConsumer]:
    """The per-request flow and its results node."""
    source = IterableProducer(list(values), name="values")
    out = ResultsConsumer(name="scores")(Score(name="score")(Normalize(name="normalize")(source)))
    return Flow([source], [out]), out


async def score(values: list[float], pool: asyncflow.Pool | None) -> list[float]:
    """Run one request's flow (on ``pool`` when given) and return its results, in order."""
    flow, out = scoring_flow(values)
    run = asyncio.ensure_future(flow.run(pool=pool))
    try:
        results = [y async for y in flow.results(out)]
    except BaseException:
        run.cancel()
        raise
    await run
    return results


async def handle_score(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        values = body["values"]
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": 'send {"values": [numbers]}'}, status=400)
    started = time.perf_counter()
    scores = await score(values, request.app[POOL])
    return web.json_response({"scores": scores, "ms": round((time.perf_counter() - started) * 1000, 2)})


def make_app(pool: asyncflow.Pool | None) -> web.Application:
    """The service: ``POST /score`` with ``{"values": [...]}``."""
    app = web.Application()
    app[POOL] = pool
    app.router.add_post("/score", handle_score)
    return app


async def serve(port: int, use_pool: bool) -> None:
    """Serve until interrupted; the pool lives as long as the service."""
    pool = asyncflow.Pool(3, max_processes=12) if use_pool else None
    if pool is not None:
        await pool.start()
    runner = web.AppRunner(make_app(pool))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"serving on http://127.0.0.1:{port}/score ({'warm pool' if pool else 'fresh processes per request'})")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        if pool is not None:
            await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-pool", action="store_true", help="spawn fresh processes for every request")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, not args.no_pool))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
