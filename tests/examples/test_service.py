"""examples/service.py under load: concurrent requests, each a flow on a shared warm pool, every answer right."""

from __future__ import annotations

import asyncio
import math
import socket

import aiohttp
import pytest
from aiohttp import web
from examples.service import make_app

import asyncflow


def _expected(values: list[float]) -> list[float]:
    return [round(1.0 / (1.0 + math.exp(-12.0 * (min(1.0, max(0.0, v / 100.0)) - 0.5))), 6) for v in values]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.timeout(300)
async def test_fifty_concurrent_requests_on_a_pool_all_answer_right() -> None:
    async with asyncflow.Pool(3, max_processes=12) as pool:  # 4 flows at once; the others wait
        runner = web.AppRunner(make_app(pool))
        await runner.setup()
        port = _free_port()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            async with aiohttp.ClientSession() as session:

                async def ask(k: int) -> tuple[list[float], list[float]]:
                    values = [float((k * 7 + j) % 101) for j in range(k % 5 + 1)]
                    async with session.post(f"http://127.0.0.1:{port}/score", json={"values": values}) as reply:
                        assert reply.status == 200
                        body = await reply.json()
                    return values, body["scores"]

                answers = await asyncio.gather(*(ask(k) for k in range(50)))
                for values, scores in answers:
                    assert scores == _expected(values)
                async with session.post(f"http://127.0.0.1:{port}/score", json={"values": "x"}) as reply:
                    assert reply.status == 400
        finally:
            await runner.cleanup()
        assert 3 <= pool.size <= 12
