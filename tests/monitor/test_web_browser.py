"""WebView in a real browser: headless Chromium (Debian's, /usr/bin/chromium) driven by Playwright.

``make test`` installs Chromium with apt-get when it is missing (Playwright's own browser
download is not reachable here).  Where it truly cannot be installed (not root, no
sudo) these tests are skipped, saying so; under CI (``CI=true``, root) they fail
instead, since ``make test`` should have installed it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asyncflow.consumers import PreviewConsumer
from asyncflow.core import REALTIME, Flow
from asyncflow.monitor import WebView
from asyncflow.producers import SyntheticCamera
from tests.helpers import Sleepy

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
NAMES = ("camera", "detector", "preview")


def preview_flow(frames: int = 150) -> Flow:
    """A 30 fps camera (320x180) -> a detector slower than it (60 ms a frame) -> a preview; REALTIME."""
    camera = SyntheticCamera(nb_frames=frames, fps=30, size=(320, 180), name="camera")
    detector = Sleepy(0.06, name="detector")(camera)
    return Flow([camera], [PreviewConsumer(max_fps=15, name="preview")(detector)], flow_type=REALTIME)


def cli_preview_flow() -> Flow:
    return preview_flow(90)


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; the test is skipped where it is missing (failed under CI, where make test installs it)."""
    if not CHROMIUM.exists():
        reason = f"Debian's chromium is not installed at {CHROMIUM}: `make test` installs it (apt-get, as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI runs make test as root, so it should be there")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
async def page(chromium: Path) -> AsyncIterator[Any]:
    """A page of a headless Chromium (1280x900)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium))
        try:
            yield await browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            await browser.close()


async def text(page: Any, selector: str) -> str:
    return str(await page.locator(selector).first.text_content())


async def poll(check: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {seconds} s: {check}")
        await asyncio.sleep(0.1)


async def preview_size(page: Any) -> list[int]:
    size: list[int] = await page.eval_on_selector("img.preview", "img => [img.naturalWidth, img.naturalHeight]")
    return size


async def test_the_page_shows_the_flow_live_and_survives_its_end(page: Any, tmp_path: Path) -> None:
    flow = preview_flow()
    async with WebView(flow, port=0) as view:
        run = asyncio.create_task(view.run_until(flow.run()))
        await page.goto(view.url)
        for name in NAMES:  # every node, in the table and in the graph
            await page.wait_for_selector(f'#nodes tr[data-node="{name}"]', timeout=20_000)
            assert name in await text(page, "#graph")
        await page.wait_for_function("document.getElementById('state').textContent === 'running'", timeout=60_000)

        # Its numbers change while the flow runs.
        first = await poll(lambda: text(page, '#nodes tr[data-node="detector"] td.c-items'))

        async def changed() -> bool:
            now = await text(page, '#nodes tr[data-node="detector"] td.c-items')
            return now != first and flow.running

        await poll(changed, 20)

        # The preview shows a frame of the frame's size, with its index.
        await poll(lambda: _is(preview_size(page), [320, 180]), 20)
        caption = await text(page, "figure.preview figcaption")
        assert re.search(r"preview · frame #\d+ · 320\u00d7180", caption), caption

        # A REALTIME flow with a detector slower than its camera: drops by cause, item ages.
        await poll(lambda: _contains(text(page, '#nodes tr[data-node="detector"] td.c-drops'), "full"), 20)
        assert re.search(r"\d+(\.\d+)? (µs|ms|s) / ", await text(page, '#nodes tr[data-node="detector"] td.c-age'))
        await page.screenshot(path=str(tmp_path / "running.png"))

        await run
        await page.wait_for_function("document.getElementById('state').textContent === 'finished'", timeout=20_000)
        emitted = flow.stats()["camera"].processed
        await poll(lambda: _is(text(page, '#nodes tr[data-node="camera"] td.c-items'), f"{emitted:,}"), 10)
        assert "✓ done" in await text(page, '#nodes tr[data-node="preview"] td.c-state')
        await page.wait_for_selector("#report-panel:not([hidden])", timeout=10_000)
        assert "asyncflow bottleneck report" in await text(page, "#report")
        assert (await text(page, "#verdict-label")) in ("Bottleneck", "No bottleneck")

        await asyncio.sleep(1.5)  # the page survives the end: still the final figures, still connected
        assert await text(page, "#state") == "finished"
        assert await text(page, "#conn") == "live"
        assert await preview_size(page) == [320, 180]
        await page.screenshot(path=str(tmp_path / "finished.png"), full_page=True)
    # The view has stopped: the page keeps the last figures and says so.
    await page.wait_for_function(
        "document.getElementById('conn').textContent.includes('stopped serving')", timeout=10_000
    )
    assert await text(page, "#state") == "finished"
    assert (tmp_path / "finished.png").stat().st_size > 10_000


def start_cli(err: Path) -> subprocess.Popen[bytes]:
    """``asyncflow run ... --web 127.0.0.1:0`` on ``cli_preview_flow``, its stderr to ``err``."""
    target = "tests.monitor.test_web_browser:cli_preview_flow"
    return subprocess.Popen(
        [sys.executable, "-m", "asyncflow", "run", target, "--web", "127.0.0.1:0", "--no-progress", "--no-report"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
        env={**os.environ, "COLUMNS": "120"},
    )


async def test_the_page_of_the_command_line_outlives_the_run(page: Any, tmp_path: Path) -> None:
    err = tmp_path / "stderr.txt"
    process = start_cli(err)
    try:

        async def url() -> str | None:
            found = re.search(r"web view at (\S+)", err.read_text())
            assert process.poll() is None, err.read_text()
            return found.group(1) if found else None

        await page.goto(await poll(url, 60))
        await page.wait_for_function(
            "['running', 'finished'].includes(document.getElementById('state').textContent)", timeout=60_000
        )
        await poll(lambda: _is(preview_size(page), [320, 180]), 60)
        # The run ends; the command serves the final report from a new event loop: the page reconnects.
        await page.wait_for_function("document.getElementById('state').textContent === 'finished'", timeout=60_000)
        await poll(lambda: _contains(asyncio.sleep(0, err.read_text()), "shows its final report"), 30)
        await page.wait_for_function("document.getElementById('conn').textContent === 'live'", timeout=20_000)
        await page.wait_for_selector("#report-panel:not([hidden])", timeout=10_000)
        await poll(lambda: _is(preview_size(page), [320, 180]), 10)  # the last frame, streamed again
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)
        try:
            status = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            raise
    assert status == 0, err.read_text()


async def _is(awaitable: Any, expected: Any) -> bool:
    return bool(await awaitable == expected)


async def _contains(awaitable: Any, part: str) -> bool:
    return part in await awaitable
