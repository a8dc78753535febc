"""WebView without a browser: /api/stats, /metrics and the event stream over HTTP (httpx), the graph picture,
ports, slow or gone clients, the ``--web`` command line, and PreviewConsumer on its own.

The browser tests (headless Chromium) are in test_web_browser.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from asyncflow.consumers import PreviewConsumer, VoidConsumer
from asyncflow.consumers.preview import LAST_FRAME_TIMEOUT, read_preview
from asyncflow.core import Flow, FlowError, NodeConfigError
from asyncflow.monitor import WebView
from asyncflow.monitor.web import WebViewError, graph_svg, parse_address
from asyncflow.producers import SyntheticCamera
from tests.helpers import Add, CountProducer, FailAt, Pair, SizedCountProducer, Sleepy

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


# -- flows (module level: `asyncflow run tests.monitor.test_web:cli_flow` loads one) ------------------------
def counting_flow(n: int = 80, delay: float = 0.01) -> Flow:
    """numbers -> slow (``delay`` s an item) -> sink."""
    a = SizedCountProducer(n, name="numbers")
    b = Sleepy(delay, name="slow")(a)
    return Flow([a], [VoidConsumer(name="sink")(b)])


def camera_flow(frames: int = 60, size: tuple[int, int] = (320, 180), max_fps: float = 30.0) -> Flow:
    """A 30 fps synthetic camera (``frames / 30`` s) -> a PreviewConsumer."""
    camera = SyntheticCamera(nb_frames=frames, fps=30, size=size, name="camera")
    return Flow([camera], [PreviewConsumer(max_fps=max_fps, name="preview")(camera)])


def cli_flow() -> Flow:
    return counting_flow(40, 0.01)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def wait_for(check: Any, seconds: float = 30.0, every: float = 0.05) -> Any:
    """Poll ``check()`` (sync or async) until it returns something true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {seconds} s: {check}")
        await asyncio.sleep(every)


# -- addresses and ports -------------------------------------------------------------------------------
def test_addresses_are_host_and_port_with_the_loopback_by_default() -> None:
    assert parse_address("8000") == ("127.0.0.1", 8000)
    assert parse_address("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_address("localhost:0") == ("localhost", 0)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    assert parse_address(":8000") == ("127.0.0.1", 8000)
    for bad in ("", "http", "99999", "host:", "::1:80", "-1"):
        with pytest.raises(ValueError, match="PORT"):
            parse_address(bad)
    with pytest.raises(ValueError, match="port"):
        WebView(counting_flow(), port=70000)
    with pytest.raises(ValueError, match="refresh"):
        WebView(counting_flow(), refresh=0)


async def test_a_port_in_use_fails_before_the_flow_starts() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    flow = counting_flow(5)
    try:
        with pytest.raises(WebViewError, match=rf"127\.0\.0\.1:{port}: .*in use"):
            WebView(flow, port=port).bind()
        ran = False
        with pytest.raises(WebViewError, match="in use"):
            async with WebView(flow, port=port):
                ran = True  # never: the port is bound before the block runs
        assert not ran
        assert flow.stats() == {}  # the flow never started
    finally:
        taken.close()


# -- the graph picture ----------------------------------------------------------------------------------
def test_the_graph_is_drawn_without_graphviz_one_box_per_node_and_an_arrow_per_edge() -> None:
    a = CountProducer(3, name="numbers")
    left = Add(1, name="left <&>")(a)
    right = Add(2, name="right", nb_tasks=2)(left)
    pair = Pair(name="pair")(right, a)  # a -> pair skips two layers: drawn around them
    flow = Flow([a], [VoidConsumer(name="sink")(pair)])
    svg = ET.fromstring(graph_svg(flow))
    groups = svg.findall(f"{SVG}g")
    nodes = [g for g in groups if "node" in g.get("class", "").split()]
    edges = [g for g in groups if g.get("class") == "edge"]
    assert [g.findtext(f"{SVG}title") for g in nodes] == [f"n{i}" for i in range(5)]
    assert [g.get("data-node") for g in nodes] == ["numbers", "left <&>", "right", "pair", "sink"]
    assert nodes[0].get("class") == "node producer" and nodes[4].get("class") == "node consumer"
    texts = ["".join(t.itertext()) for t in nodes[2].iter(f"{SVG}text")]
    assert texts[:2] == ["right", "Add \u00d72"]
    assert len(edges) == 5  # numbers->left, left->right, right->pair, numbers->pair, pair->sink
    assert {e.findtext(f"{SVG}text") for e in edges} >= {"0", "1"}  # pair's two inputs, by position
    # Boxes of one layer do not overlap, and every layer is below the one before.
    boxes = [g.find(f"{SVG}rect") for g in nodes]
    ys = [float(b.get("y")) for b in boxes]  # type: ignore[union-attr]
    assert ys == sorted(ys) and len(set(ys)) == 5


def test_graphviz_draws_the_graph_when_dot_is_installed() -> None:
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed: the view draws the graph itself (tested above)")
    from asyncflow.monitor.web import _graphviz_svg

    svg = asyncio.run(_graphviz_svg(counting_flow()))
    assert svg is not None and svg.startswith("<svg")
    assert "<title>n0</title>" in svg and "<title>n2</title>" in svg


# -- /api/stats, /metrics, the event stream -------------------------------------------------------------------
async def test_api_stats_and_metrics_follow_the_run_and_keep_its_end(client: httpx.AsyncClient) -> None:
    flow = counting_flow(80, 0.02)
    async with WebView(flow, port=0) as view:
        assert view.port != 0 and view.url == f"http://127.0.0.1:{view.port}/"
        before = (await client.get(view.url + "api/stats")).json()
        assert before["flow"]["state"] == "waiting"
        run = asyncio.create_task(view.run_until(flow.run()))

        async def moving() -> Any:
            data = (await client.get(view.url + "api/stats")).json()
            slow = next(n for n in data["nodes"] if n["name"] == "slow")
            return data if data["flow"]["state"] == "running" and 0 < slow["items"] < 80 else None

        live = await wait_for(moving)
        assert [n["name"] for n in live["nodes"]] == ["numbers", "slow", "sink"]
        assert set(live["tasks"]) == {"numbers", "slow", "sink"}
        slow = live["nodes"][1]
        assert slow["kind"] == "processor" and slow["class"] == "Sleepy" and slow["state"] == "running"
        for key in ("items_per_second", "queue_fill", "busy", "drops", "age_p50", "age_p95", "capacity"):
            assert key in slow
        assert live["nodes"][0]["queue_fill"] is None  # a producer has no input queue
        assert live["report"]["label"] in ("Bottleneck", "No bottleneck", "Too short to tell")

        metrics = await client.get(view.url + "metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
        assert families["asyncflow_flow_running"].samples[0].value == 1
        processed = {s.labels["node"]: s.value for s in families["asyncflow_items_processed"].samples}
        assert set(processed) == {"numbers", "slow", "sink"}
        assert {s.labels["node"] for s in families["asyncflow_node_busy_ratio"].samples} == {"numbers", "slow", "sink"}

        await run
        final = (await client.get(view.url + "api/stats")).json()
        assert final["flow"]["state"] == "finished" and not final["flow"]["running"]
        assert [n["items"] for n in final["nodes"]] == [80, 80, 80]
        assert all(n["state"] == "done" for n in final["nodes"])
        assert final["report"]["bottleneck"] == "slow"
        assert "asyncflow bottleneck report" in final["report"]["text"]
        families = {f.name: f for f in text_string_to_metric_families((await client.get(view.url + "metrics")).text)}
        assert {s.labels["node"]: s.value for s in families["asyncflow_items_processed"].samples} == {
            "numbers": 80.0,
            "slow": 80.0,
            "sink": 80.0,
        }
        assert {s.labels["node"]: s.value for s in families["asyncflow_bottleneck"].samples}["slow"] == 1
        assert families["asyncflow_flow_running"].samples[0].value == 0
        page = await client.get(view.url)
        assert page.status_code == 200 and "static/app.js" in page.text
        for name, kind in (("app.js", "javascript"), ("style.css", "css")):
            response = await client.get(view.url + "static/" + name)
            assert response.status_code == 200 and kind in response.headers["content-type"]
        assert (await client.get(view.url + "static/../web.py")).status_code == 404
        graph = await client.get(view.url + "graph.svg")
        assert graph.headers["content-type"].startswith("image/svg+xml") and "<title>n2</title>" in graph.text
    # The view's own registry: nothing in prometheus-client's global one.
    assert not [m for m in prometheus_client.REGISTRY.collect() if m.name.startswith("asyncflow")]
    with pytest.raises(httpx.ConnectError):
        await client.get(view.url + "api/stats")  # stopped, and the port released


async def test_the_event_stream_pushes_figures_at_least_4_times_a_second(client: httpx.AsyncClient) -> None:
    flow = counting_flow(10, 0.0)
    async with WebView(flow, port=0) as view:
        messages: list[float] = []
        async with client.stream("GET", view.url + "api/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            started = time.monotonic()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    messages.append(time.monotonic() - started)
                    assert '"flow"' in line
                if time.monotonic() - started > 2.0:
                    break
        assert len(messages) >= 9, messages  # 5 a second, the first at once


async def test_a_failed_run_is_shown_as_failed_with_its_error(client: httpx.AsyncClient) -> None:
    a = CountProducer(10, name="numbers")
    flow = Flow([a], [VoidConsumer(name="sink")(FailAt(3, name="fail")(a))])
    async with WebView(flow, port=0) as view:
        with pytest.raises(FlowError):
            await view.run_until(flow.run())
        data = (await client.get(view.url + "api/stats")).json()
    assert data["flow"]["state"] == "failed"
    assert "NodeFailedError" in data["flow"]["error"] and "fail" in data["flow"]["error"]


async def test_start_twice_is_an_error_and_stop_is_idempotent() -> None:
    view = WebView(counting_flow(), port=0)
    await view.start()
    try:
        with pytest.raises(RuntimeError, match="already serving"):
            await view.start()
    finally:
        await view.stop()
    await view.stop()
    assert not view.serving


# -- clients that read slowly, stop reading or leave ---------------------------------------------------------
def stalled_client(port: int, path: str) -> socket.socket:
    """Ask for ``path`` and never read the answer (a tiny receive buffer, so the server's writes block soon)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


async def timed_run(flow: Flow, view: WebView) -> float:
    """Run ``flow``; how long its tasks streamed (the longest task's time from its first item to its end).

    Process start-up is left out: on a shared machine it varies from run to run far more
    than anything a client of the view could add.
    """
    await asyncio.wait_for(view.run_until(flow.run()), 120)
    return max(ts.wall_seconds for ts in flow.stats().values())


async def test_browsers_that_stop_reading_or_leave_never_slow_the_flow(client: httpx.AsyncClient) -> None:
    # A camera's clock paces the run (90 frames at 30 fps: 3 s); 640x360 previews, 30 a second.
    flow = camera_flow(90, (640, 360), 30.0)
    async with WebView(flow, port=0) as view:
        baseline = await timed_run(flow, view)
    frames_alone = view._previews["preview"].seq

    flow = camera_flow(90, (640, 360), 30.0)
    sockets: list[socket.socket] = []
    async with WebView(flow, port=0, refresh=0.02) as view:
        for path in ("/api/events", "/preview.mjpg?node=preview", "/preview.mjpg", "/api/events"):
            sockets.append(stalled_client(view.port, path))
        gone = stalled_client(view.port, "/preview.mjpg")
        run = asyncio.create_task(timed_run(flow, view))
        await wait_for(lambda: view._previews["preview"].seq >= 3, 90)
        gone.close()  # a browser that leaves mid-stream
        started = time.monotonic()
        answer = await client.get(view.url + "api/stats")  # the view still answers others at once
        assert answer.status_code == 200 and time.monotonic() - started < 5
        stalled = await run
    for sock in sockets:
        sock.close()
    assert stalled < 1.5 * baseline + 1.0, (stalled, baseline)  # the camera's 3 s, both times
    # The previews kept coming while those clients were stuck.
    assert view._previews["preview"].seq >= min(20, frames_alone // 2), (view._previews["preview"].seq, frames_alone)


# -- the command line -------------------------------------------------------------------------------------------
def wait_for_text(path: Path, pattern: str, process: subprocess.Popen[str], seconds: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text())
        if found:
            return found
        if process.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"no {pattern!r} in {path.name} (exit {process.poll()}):\n{path.read_text()}")


@pytest.fixture
def cli_process(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Path]:
        err = tmp_path / f"stderr-{len(started)}.txt"
        process = subprocess.Popen(
            [sys.executable, "-m", "asyncflow", *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err.open("w"),
            text=True,
            env={**os.environ, "COLUMNS": "120", **(env or {})},
        )
        started.append(process)
        return process, err

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_cli_web_serves_the_run_then_its_final_report_until_ctrl_c(cli_process: Any) -> None:
    process, err = cli_process("run", "tests.monitor.test_web:cli_flow", "--web", "127.0.0.1:0", "--no-progress")
    url = wait_for_text(err, r"web view at (http://127\.0\.0\.1:\d+/)", process).group(1)
    with httpx.Client(timeout=10) as http:
        deadline = time.monotonic() + 60
        data: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                data = http.get(url + "api/stats").json()
            except httpx.TransportError:
                pass  # between the run's event loop and the one that serves the final report
            if data.get("flow", {}).get("state") == "finished":
                break
            time.sleep(0.1)
        assert data["flow"]["state"] == "finished", data
        assert [n["items"] for n in data["nodes"]] == [40, 40, 40]
        wait_for_text(err, r"shows its final report until Ctrl-C", process)
        time.sleep(0.3)
        assert process.poll() is None  # still serving
        final = http.get(url + "api/stats").json()
        assert final["flow"]["state"] == "finished" and "bottleneck report" in final["report"]["text"]
        assert "asyncflow_items_processed_total" in http.get(url + "metrics").text
    assert "asyncflow bottleneck report" in err.read_text()  # --report still prints it
    process.send_signal(signal.SIGINT)
    assert process.wait(20) == 0


def test_cli_web_with_a_port_in_use_exits_2_before_the_flow_starts(cli_process: Any, tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    record = tmp_path / "record.txt"
    try:
        process, err = cli_process(
            "run",
            "tests.monitor.sample_flow:make_endless_flow",
            "--web",
            str(port),
            env={"ASYNCFLOW_TEST_RECORD": str(record)},
        )
        assert process.wait(60) == 2
    finally:
        taken.close()
    message = err.read_text()
    assert f"asyncflow: error: cannot serve the web view on 127.0.0.1:{port}" in message
    assert "in use" in message
    assert not record.exists()  # no task was started: the sink would have created it
    process, err = cli_process("run", "tests.monitor.sample_flow:make_flow", "--web", "localhost:99999")
    assert process.wait(60) == 2
    assert "--web: expected [HOST:]PORT with PORT from 0 to 65535" in err.read_text()


def test_the_core_and_the_monitor_import_neither_aiohttp_nor_prometheus() -> None:
    code = (
        "import sys, asyncflow, asyncflow.monitor, asyncflow.consumers, asyncflow.cli\n"
        "from asyncflow.consumers import PreviewConsumer\n"
        "assert not {'aiohttp', 'prometheus_client', 'cv2'} & set(sys.modules), sorted(sys.modules)\n"
        "from asyncflow.monitor import WebView\n"
        "assert 'aiohttp' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# -- PreviewConsumer on its own -------------------------------------------------------------------------------------
def test_preview_consumer_checks_its_settings() -> None:
    for kwargs in ({"max_fps": 0}, {"max_fps": float("inf")}, {"quality": 0}, {"quality": 101}, {"max_width": 8}):
        with pytest.raises(NodeConfigError):
            PreviewConsumer(**kwargs)
    with pytest.raises(NodeConfigError, match="swap_channels"):
        PreviewConsumer(swap_channels=1)  # type: ignore[arg-type]


def test_preview_consumer_takes_pairs_or_frames_and_names_itself_otherwise() -> None:
    node = PreviewConsumer(name="pv")
    frame = np.zeros((18, 32, 3), np.uint8)
    assert node._split((7, frame))[0] == 7
    assert node._split(frame)[0] is None
    assert node._split(np.zeros((18, 32), np.uint8))[0] is None
    with pytest.raises(TypeError, match="PreviewConsumer 'pv': items must be frames"):
        node.consume("not a frame")
    with pytest.raises(TypeError, match="shape"):
        node.consume(np.zeros((18, 32, 2), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        node.consume((1, frame.astype(np.float32)))


def test_preview_consumer_encodes_jpeg_of_the_frames_size() -> None:
    def decoded(node: PreviewConsumer, frame: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        preview = node.encode(3, frame)
        image = cv2.imdecode(np.frombuffer(preview.jpeg, np.uint8), cv2.IMREAD_UNCHANGED)
        assert (preview.width, preview.height) == (image.shape[1], image.shape[0])
        return image

    red_bgr = np.zeros((90, 160, 3), np.uint8)
    red_bgr[:, :, 2] = 255
    image = decoded(PreviewConsumer(), red_bgr)
    assert image.shape == (90, 160, 3) and image[45, 80, 2] > 240 and image[45, 80, 0] < 15
    red_rgb = red_bgr[:, :, ::-1].copy()
    assert decoded(PreviewConsumer(swap_channels=True), red_rgb)[45, 80, 2] > 240
    assert decoded(PreviewConsumer(), np.full((90, 160), 128, np.uint8)).shape == (90, 160)
    assert decoded(PreviewConsumer(), np.zeros((90, 160, 4), np.uint8)).shape == (90, 160, 3)
    assert decoded(PreviewConsumer(max_width=80), red_bgr).shape == (45, 80, 3)


async def test_preview_consumer_never_waits_and_keeps_only_the_newest_frame() -> None:
    received: list[Any] = []
    stall = asyncio.Event()

    async def view(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await stall.wait()  # a view that does not read at first
        while (frame := await read_preview(reader)) is not None:
            received.append(frame)
        writer.close()

    folder = tempfile.mkdtemp(prefix="asyncflow-test-")
    path = os.path.join(folder, "v.sock")
    server = await asyncio.start_unix_server(view, path=path)
    try:
        node = PreviewConsumer(max_fps=20, name="pv")
        node.viewer = path
        await node.open()
        frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), np.uint8)
        started = time.perf_counter()
        for index in range(300):
            node.consume((index, frame))
            if index % 30 == 0:
                await asyncio.sleep(0.02)  # the node's loop turns: its sending coroutine runs
        assert time.perf_counter() - started < 2.0  # 300 frames: consume() never waited on the view
        assert node.frames_received == 300
        assert node.frames_sent <= 8  # a few went into the socket's buffers, the rest were never encoded
        stall.set()
        for index in range(300, 310):
            node.consume((index, frame))
            await asyncio.sleep(0.01)
        closing = time.perf_counter()
        await node.close()
        assert time.perf_counter() - closing < LAST_FRAME_TIMEOUT + 1.0
        await wait_for(lambda: received and received[-1].frame_index == 309, 10)
        assert all(f.node == "pv" and (f.width, f.height) == (640, 360) for f in received)
        assert len(received) == node.frames_sent < 40
    finally:
        server.close()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


async def test_a_preview_nobody_watches_encodes_nothing_and_never_holds_the_flow() -> None:
    flow = camera_flow(30)
    started = time.monotonic()
    await asyncio.wait_for(flow.run(), 60)
    assert flow.stats()["preview"].processed == flow.stats()["camera"].processed > 0
    assert time.monotonic() - started < 30
