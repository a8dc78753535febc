"""``WebView``: watch a running flow in a browser — its graph, a live table, the bottleneck verdict, video previews.

::

    async with WebView(flow, port=8000) as view:     # http://127.0.0.1:8000/
        await view.run_until(flow.run())            # ... records how the run ended
        await view.serve_forever()                  # optional: the final report until cancelled
    # or, serving only while the flow runs (as LiveDisplay draws):
    await WebView(flow, port=8000).run_until(flow.run())

    asyncflow run package.module:make_flow --web 8000      # the command line (HOST:PORT too)

One page, no build step, its few static files shipped in the package
(``asyncflow/monitor/static``), nothing fetched from the network:

- the graph (``/graph.svg``): drawn by graphviz when its ``dot`` program is
  installed, else by a small layered layout of this module; each node's box shows
  its live items/s and busy share, and the bottleneck is outlined;
- a live table, one row per node (``nb_tasks`` workers added up, as in the
  terminal's ``LiveDisplay``): items, items/s, input-queue fill, busy %, drops by
  cause, item age p50/p95, pushed to the page over server-sent events
  (``/api/events``) every ``refresh`` seconds (5 times a second by default);
- the bottleneck verdict of ``bottleneck_report`` (live, and the whole report,
  as text, once the flow has ended: the page keeps it as long as the view serves);
- a live preview of each ``PreviewConsumer`` of the flow, as MJPEG
  (``/preview.mjpg?node=NAME``, ``multipart/x-mixed-replace``; ``/preview.jpg?node=NAME``
  is the newest frame alone).  The JPEG is encoded in the consumer's own process,
  which hands it over on a private Unix socket the view binds (see
  ``asyncflow.consumers.preview``); the view only keeps the newest one.

And for programs: ``GET /api/stats`` (the same figures as JSON: the flow, each
node, each task, the verdict, the previews) and ``GET /metrics`` (Prometheus text
format, from a ``CollectorRegistry`` of this view's own, never the global one).

**It never holds the flow back.**  It runs in the host's event loop, next to
``flow.run()``, and only reads: ``flow.stats()`` (which the tasks refresh every half
second) once a tick, and the previews as they come (keeping the newest; a
``PreviewConsumer`` never waits for the view, it drops frames instead).  Each
browser connection is served by its own coroutine that writes the latest data when
it can: a browser that reads slowly, or stops reading, gets fewer updates (or
none), and nothing waits on it; a preview stream skips the frames it had no time
for.  Nothing blocking runs in the loop: graphviz is run once at start as a
subprocess; JPEG encoding happens in the ``PreviewConsumer``'s process.

**The port is bound before the flow starts** (``bind()``, called by ``start()``):
a port in use raises ``WebViewError`` (an ``OSError``) at once, saying so.

**Why aiohttp** (the ``web`` extra: ``pip install 'asyncflow[web]'``): the view must
live inside the host's event loop, started and stopped around ``flow.run()``, on a
socket bound up front.  aiohttp is built for exactly that: ``AppRunner`` and
``SockSite`` run an app on a given socket in the running loop, with no signal
handling of their own (the host's Ctrl-C stays the host's), and it streams
responses (server-sent events, MJPEG) with a ``drain`` per write, which is what
lets a slow browser slow only itself.  One well-kept dependency (aio-libs) covers
server, streaming and routing; Starlette + uvicorn would need two, and uvicorn's
``Server`` installs signal handlers while it serves unless patched.  The core never
imports this module (nor aiohttp, nor prometheus-client).
"""

from __future__ import annotations

import asyncio
import errno
import html
import importlib.resources
import json
import logging
import math
import os
import shutil
import socket
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

try:
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
except ModuleNotFoundError as _missing:  # pragma: no cover - depends on what is installed
    raise ImportError(
        f"asyncflow's web view needs the {_missing.name!r} package: install it with pip install 'asyncflow[web]'"
    ) from _missing

from ..consumers.preview import PreviewConsumer, PreviewFrame, read_preview
from ..core.node import Node
from .graph import _details, _edges, to_dot
from .live import _Rate
from .report import Report, bottleneck_report
from .stats import TIMES, NodeStats, kind_of, node_stats, task_names

if TYPE_CHECKING:
    from ..core.flow import Flow

__all__ = ["DEFAULT_HOST", "WebView", "WebViewError", "bind_socket", "graph_svg", "parse_address"]

log = logging.getLogger("asyncflow")

T = TypeVar("T")

#: Where the view listens unless told otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"

#: Seconds aiohttp gives open connections (event streams, previews) to finish when the view stops.
SHUTDOWN_TIMEOUT = 1.0

_STATIC = ("index.html", "app.js", "style.css")
_CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_BOUNDARY = "asyncflow-frame"


class WebViewError(OSError):
    """The web view cannot serve: the address is in use, not of this machine, or not allowed.

    Its message says which address and why; ``errno`` is the system's error number.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno  # OSError's; None when the system gave none


# -- addresses ------------------------------------------------------------------------------------
def parse_address(text: str, default_host: str = DEFAULT_HOST) -> tuple[str, int]:
    """``"8000"``, ``"0.0.0.0:8000"``, ``"localhost:8000"``, ``"[::1]:8000"`` → ``(host, port)``.

    Port 0 asks for any free port.  Raises ``ValueError`` saying what is wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected [HOST:]PORT, got {text!r}")
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"expected [HOST:]PORT, got {text!r} (write an IPv6 address in brackets: [::1]:8000)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected [HOST:]PORT with PORT from 0 to 65535, got {text!r}")
    return host or default_host, int(port_text)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port``; ``WebViewError`` when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WebViewError(f"cannot serve the web view on {host}:{port}: unknown host ({exc})", exc.errno) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free to take
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        hint = (
            f": is another program using port {port}? choose another port, or 0 for any free one"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise WebViewError(f"cannot serve the web view on {host}:{port}: {why}{hint}", exc.errno) from exc
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# -- figures ---------------------------------------------------------------------------------------
def _num(value: float | None, digits: int = 6) -> float | None:
    """A JSON-safe number: ``None`` for NaN, infinities and ``None``."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _label(report: Report) -> str:
    """The verdict's heading, as the terminal report writes it."""
    if report.too_short:
        return "Too short to tell"
    return "Bottleneck" if report.saturated else "No bottleneck"


def _task_json(name: str, ts: Any) -> dict[str, Any]:
    """One task's figures (``TaskStats`` or a stats object with the same fields)."""
    busy = float(getattr(ts, "busy_seconds", 0.0) or 0.0)
    wall = float(getattr(ts, "wall_seconds", 0.0) or 0.0)
    processed = int(getattr(ts, "processed", 0) or 0)
    samples = sorted(getattr(ts, "samples", None) or ())
    ages = sorted(getattr(ts, "ages", None) or ())
    return {
        "name": name,
        "received": int(getattr(ts, "received", 0) or 0),
        "processed": processed,
        "skipped": int(getattr(ts, "skipped", 0) or 0),
        "dropped": int(getattr(ts, "dropped", 0) or 0),
        "sent": int(getattr(ts, "sent", 0) or 0),
        "queued": int(getattr(ts, "queued", 0) or 0),
        "busy_seconds": _num(busy),
        "wall_seconds": _num(wall),
        "busy": _num(busy / wall if wall > 0 else 0.0, 4),
        "mean_seconds": _num(busy / processed if processed else 0.0),
        "p95_seconds": _num(_percentile(samples, 95)),
        "age_p50": _num(_percentile(ages, 50)) if ages else None,
        "age_p95": _num(_percentile(ages, 95)) if ages else None,
        "age_max": _num(float(getattr(ts, "age_max", 0.0) or 0.0)),
        "drops": {node: dict(causes) for node, causes in (getattr(ts, "drops", None) or {}).items()},
        "finished": bool(getattr(ts, "finished", False)),
    }


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _node_state(ns: NodeStats) -> str:
    return "done" if ns.finished else "running" if ns.started else "waiting"


# -- the graph picture ----------------------------------------------------------------------------------
_BOX_H = 58
_ROW = 104  # vertical distance between two layers' boxes
_GAP = 28  # horizontal gap between two boxes of a layer
_MARGIN = 16

_SVG_STYLE = """
.node rect.box{stroke-width:1.5}
.node.producer rect.box{fill:#dbeafe;stroke:#1d4ed8}
.node.processor rect.box{fill:#f3f4f6;stroke:#4b5563}
.node.consumer rect.box{fill:#dcfce7;stroke:#15803d}
.node text{font-family:Helvetica,Arial,sans-serif;fill:#111827}
.node text.name{font-size:13px;font-weight:bold}
.node text.details,.node text.live{font-size:11px;fill:#4b5563}
.node rect.busybar{fill:#22c55e}
.edge path{fill:none;stroke:#6b7280;stroke-width:1.4}
.edge text{font-family:Helvetica,Arial,sans-serif;font-size:10px;fill:#6b7280}
"""


def _layers(flow: Flow) -> list[int]:
    """Each node's layer (run order): 0 for a producer, else one more than its deepest parent."""
    index = {id(node): i for i, node in enumerate(flow.graph.order)}
    layer: list[int] = []
    for node in flow.graph.order:
        layer.append(1 + max((layer[index[id(p)]] for p in node.parents), default=-1))
    return layer


def _box_width(node: Node) -> float:
    return max(120.0, 7.6 * len(node.name) + 28, 6.3 * len(_details(node)) + 28)


def graph_svg(flow: Flow) -> str:
    """The flow's graph as SVG, drawn by a small layered layout (no graphviz needed), top to bottom.

    Layers by longest path from the producers; within a layer, nodes are ordered by
    the mean position of their parents.  Each node is a ``<g class="node KIND">``
    whose ``<title>`` is ``nN`` (N: its run-order index, as in ``to_dot``), holding a
    ``text.live`` and a ``rect.busybar`` the page fills in.
    """
    nodes = flow.graph.order
    index = {id(node): i for i, node in enumerate(nodes)}
    layer_of = _layers(flow)
    widths = [_box_width(node) for node in nodes]
    layers: list[list[int]] = [[] for _ in range(max(layer_of, default=-1) + 1)]
    for i, layer in enumerate(layer_of):
        layers[layer].append(i)
    center: dict[int, float] = {}
    for members in layers:
        members.sort(key=lambda i: (_mean(center[index[id(p)]] for p in nodes[i].parents), i))
        total = sum(widths[i] for i in members) + _GAP * (len(members) - 1)
        x = -total / 2
        for i in members:
            center[i] = x + widths[i] / 2
            x += widths[i] + _GAP
    half = max((abs(center[i]) + widths[i] / 2 for i in center), default=60.0)
    width = 2 * half + 2 * _MARGIN
    height = len(layers) * _ROW - (_ROW - _BOX_H) + 2 * _MARGIN + 20

    def left(i: int) -> float:
        return center[i] - widths[i] / 2 + half + _MARGIN

    def top(i: int) -> float:
        return _MARGIN + 20 + layer_of[i] * _ROW

    body: list[str] = []
    right_most = width - _MARGIN
    edges = _edges(flow)
    # Edges that skip layers go around the boxes they pass, on the right, each on its own track.
    long_edges = [(p, c) for p, c, _ in edges if layer_of[c] - layer_of[p] > 1]
    detours = 0
    for parent, child, position in edges:
        y1, y2 = top(parent) + _BOX_H, top(child)
        if layer_of[child] - layer_of[parent] <= 1:
            x1, x2 = left(parent) + widths[parent] / 2, left(child) + widths[child] / 2
            bend = (y2 - y1) / 2
            path = f"M {x1:.1f} {y1:.1f} C {x1:.1f} {y1 + bend:.1f} {x2:.1f} {y2 - bend:.1f} {x2:.1f} {y2 - 1:.1f}"
            lx, ly = x2 + (x1 - x2) * 0.2 + 5, y2 - 10
        else:
            passed = [i for i, layer in enumerate(layer_of) if layer_of[parent] < layer < layer_of[child]]
            # It leaves the parent's right side and enters the child's: later edges take outer tracks,
            # leaving higher and entering lower, so that no two of them cross.
            outgoing = [e for e in long_edges if e[0] == parent]
            into = [e for e in long_edges if e[1] == child]
            x1, x2 = left(parent) + widths[parent], left(child) + widths[child]
            ys = top(parent) + _BOX_H - 14 - min(12.0, 30 / max(1, len(outgoing) - 1)) * outgoing.index((parent, child))
            ye = top(child) + 14 + min(14.0, 36 / max(1, len(into) - 1)) * into.index((parent, child))
            xo = max([x1, x2] + [left(i) + widths[i] for i in passed]) + 18 + 12 * detours
            detours += 1
            right_most = max(right_most, xo + 8)
            r = 10
            path = (
                f"M {x1:.1f} {ys:.1f} L {xo - r:.1f} {ys:.1f} Q {xo:.1f} {ys:.1f} {xo:.1f} {ys + r:.1f} "
                f"L {xo:.1f} {ye - r:.1f} Q {xo:.1f} {ye:.1f} {xo - r:.1f} {ye:.1f} L {x2 + 1:.1f} {ye:.1f}"
            )
            lx, ly = x2 + 6, ye - 3
        body.append(f'<g class="edge"><title>n{parent}-&gt;n{child}</title><path d="{path}" marker-end="url(#arrow)"/>')
        if position is not None:
            body.append(f'<text x="{lx:.1f}" y="{ly:.1f}">{position}</text>')
        body.append("</g>")
    for i, node in enumerate(nodes):
        x, y, w = left(i), top(i), widths[i]
        kind = kind_of(node)
        body.append(
            f'<g class="node {kind}" data-node="{html.escape(node.name)}"><title>n{i}</title>'
            f'<rect class="box" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{_BOX_H}" '
            f'rx="{14 if kind == "producer" else 4}"/>'
            f'<rect class="busybar" x="{x + 1:.1f}" y="{y + _BOX_H - 5:.1f}" width="0" height="4" rx="2"/>'
            f'<text class="name" x="{x + w / 2:.1f}" y="{y + 19:.1f}" text-anchor="middle">'
            f"{html.escape(node.name)}</text>"
            f'<text class="details" x="{x + w / 2:.1f}" y="{y + 34:.1f}" text-anchor="middle">'
            f"{html.escape(_details(node))}</text>"
            f'<text class="live" x="{x + w / 2:.1f}" y="{y + 48:.1f}" text-anchor="middle"></text></g>'
        )
    width = right_most + _MARGIN
    title = html.escape(f"asyncflow ({flow.flow_type.value})")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" class="asyncflow-graph">',
        f"<style>{_SVG_STYLE}</style>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#6b7280"/></marker></defs>',
        f'<text x="{(2 * half + 2 * _MARGIN) / 2:.0f}" y="{_MARGIN + 4}" text-anchor="middle" '
        f'font-family="Helvetica,Arial,sans-serif" font-size="12" fill="#6b7280">{title}</text>',
        *body,
    ]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


async def _graphviz_svg(flow: Flow) -> str | None:
    """The graph drawn by graphviz's ``dot`` (run as a subprocess); ``None`` if it is missing or fails."""
    executable = shutil.which("dot")
    if executable is None:
        return None
    try:
        process = await asyncio.create_subprocess_exec(
            executable,
            "-Tsvg",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(process.communicate(to_dot(flow).encode()), 20)
    except (TimeoutError, OSError):
        log.warning("asyncflow web view: graphviz failed; drawing the graph itself", exc_info=True)
        return None
    if process.returncode != 0 or b"<svg" not in out:
        return None
    text = out.decode("utf-8", "replace")
    return text[text.index("<svg") :]


# -- previews -------------------------------------------------------------------------------------------
@dataclass
class _Preview:
    """The newest frame the view got from one ``PreviewConsumer``, and how fast they come."""

    node: str
    latest: PreviewFrame | None = None
    seq: int = 0  # frames received by the view (the page knows a new one by it)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    times: deque[float] = field(default_factory=lambda: deque(maxlen=32))

    def put(self, frame: PreviewFrame) -> None:
        self.latest = frame
        self.seq += 1
        self.times.append(time.monotonic())
        self._wake()

    def _wake(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    @property
    def fps(self) -> float:
        """Previews a second, over the last ones (0 once they stopped coming)."""
        if len(self.times) < 2 or time.monotonic() - self.times[-1] > 2.0:
            return 0.0
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        frame = self.latest
        return {
            "node": self.node,
            "seq": self.seq,
            "index": None if frame is None else frame.frame_index,
            "width": None if frame is None else frame.width,
            "height": None if frame is None else frame.height,
            "bytes": None if frame is None else len(frame.jpeg),
            "received": None if frame is None else frame.received,
            "fps": _num(self.fps, 2),
            "age": None if frame is None else _num(max(0.0, time.time() - frame.encoded_at), 3),
        }


# -- Prometheus -----------------------------------------------------------------------------------------
class _FlowCollector:
    """The flow's figures as Prometheus metrics, read at each scrape (``flow.stats()`` and the view's rates)."""

    def __init__(self, view: WebView) -> None:
        self.view = view

    def collect(self) -> Iterable[Metric]:
        view = self.view
        flow = view.flow
        stats = flow.stats()
        rows = node_stats(flow, stats)
        node_of = {task: ns.name for ns in rows for task in task_names(ns.node)}

        info = InfoMetricFamily("asyncflow_flow", "The flow watched by this view")
        info.add_metric([], {"type": flow.flow_type.value, "nodes": str(len(rows))})
        yield info
        yield GaugeMetricFamily("asyncflow_flow_running", "1 while flow.run() is in progress", value=int(flow.running))
        yield GaugeMetricFamily(
            "asyncflow_flow_elapsed_seconds", "Seconds since the run started (to its end)", value=view._elapsed()
        )

        def per_task(name: str, doc: str, attr: str, counter: bool) -> Metric:
            family: CounterMetricFamily | GaugeMetricFamily
            if counter:
                family = CounterMetricFamily(name, doc, labels=["node", "task"])
            else:
                family = GaugeMetricFamily(name, doc, labels=["node", "task"])
            for task, ts in stats.items():
                family.add_metric([node_of.get(task, task), task], float(getattr(ts, attr, 0) or 0))
            return family

        yield per_task("asyncflow_items_received", "Items taken from upstream", "received", True)
        yield per_task("asyncflow_items_processed", "Items the node ran on", "processed", True)
        yield per_task("asyncflow_items_sent", "Items handed downstream", "sent", True)
        yield per_task("asyncflow_items_skipped", "Items dropped by on_error='skip'", "skipped", True)
        yield per_task("asyncflow_busy_seconds", "Seconds spent inside the node's methods", "busy_seconds", True)
        yield per_task("asyncflow_task_wall_seconds", "Seconds since the task started streaming", "wall_seconds", False)
        yield per_task("asyncflow_queue_items", "Items waiting in the task's input buffer", "queued", False)

        dropped = CounterMetricFamily(
            "asyncflow_items_dropped", "Items the node lost, by cause (full, stale, order)", labels=["node", "cause"]
        )
        capacity = GaugeMetricFamily("asyncflow_queue_capacity_items", "Items the node's inputs hold", labels=["node"])
        busy = GaugeMetricFamily("asyncflow_node_busy_ratio", "Mean share of time its tasks were busy", labels=["node"])
        rate = GaugeMetricFamily("asyncflow_node_items_per_second", "Items a second, recent", labels=["node"])
        age = GaugeMetricFamily(
            "asyncflow_item_age_seconds",
            "Age of the items the node started on (since their producer emitted them), recent quantiles",
            labels=["node", "quantile"],
        )
        age_max = GaugeMetricFamily("asyncflow_item_age_max_seconds", "Oldest item it started on", labels=["node"])
        tasks = GaugeMetricFamily("asyncflow_node_tasks", "Tasks (processes) running the node", labels=["node", "kind"])
        for ns in rows:
            for cause, count in ns.drops.items():
                dropped.add_metric([ns.name, cause], count)
            if ns.unattributed_drops:
                dropped.add_metric([ns.name, "other"], ns.unattributed_drops)
            if ns.kind != "producer":
                capacity.add_metric([ns.name], ns.capacity)
            busy.add_metric([ns.name], ns.busy_fraction)
            rate.add_metric([ns.name], view._node_rate(ns))
            if ns.kind != "producer" and ns.ages:
                age.add_metric([ns.name, "0.5"], ns.age_percentile(50))
                age.add_metric([ns.name, "0.95"], ns.age_percentile(95))
                age_max.add_metric([ns.name], ns.age_max)
            tasks.add_metric([ns.name, ns.kind], ns.tasks)
        yield from (tasks, dropped, capacity, busy, rate, age, age_max)

        report = bottleneck_report(flow, stats)
        bottleneck = GaugeMetricFamily(
            "asyncflow_bottleneck", "1 for the node that limits throughput (when saturated), else 0", labels=["node"]
        )
        for ns in rows:
            bottleneck.add_metric([ns.name], int(report.saturated and report.bottleneck == ns.name))
        yield bottleneck

        frames = CounterMetricFamily("asyncflow_preview_frames", "Preview frames the view received", labels=["node"])
        for preview in view._previews.values():
            frames.add_metric([preview.node], preview.seq)
        yield frames


# -- the view -----------------------------------------------------------------------------------------------
class WebView:
    """Serve a live web page of ``flow`` (and ``/api/stats``, ``/metrics``) from the host's event loop.

    - ``host``, ``port``: where to listen (``127.0.0.1`` by default: this machine
      only; ``0.0.0.0`` for every interface; port 0 picks a free port, ``url`` tells).
    - ``refresh``: seconds between two updates pushed to the page (0.2: 5 a second).
    - ``window``: seconds of recent history the items/s figures average over.
    - ``graphviz``: draw the graph with graphviz's ``dot`` (``None``, the default:
      when it is installed), else with the view's own layout.

    Use ``async with WebView(flow) as view: ...`` (serves for the block),
    ``await view.run_until(flow.run())`` (serves while awaiting, unless already
    started: then it only records how the run ended), or ``start()`` / ``stop()``.
    ``serve_forever()`` keeps serving (the final report, after the run) until
    cancelled.  The port is bound by ``bind()`` (``start()`` calls it): a port that
    cannot be had raises ``WebViewError`` there, before anything runs.  ``bind()``
    also gives the flow's ``PreviewConsumer``s the address to hand their frames to:
    start (or bind) the view before ``flow.run()``, as the forms above do, or that
    run shows no preview.
    """

    def __init__(
        self,
        flow: Flow,
        *,
        host: str = DEFAULT_HOST,
        port: int = 8000,
        refresh: float = 0.2,
        window: float = 2.0,
        graphviz: bool | None = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"WebView: port must be an int from 0 to 65535, got {port!r}")
        if not isinstance(host, str) or not host:
            raise ValueError(f"WebView: host must be a non-empty str, got {host!r}")
        for arg, value in (("refresh", refresh), ("window", window)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"WebView: {arg} must be a number of seconds > 0, got {value!r}")
        self.flow = flow
        self.host = host
        self.port = port
        self.refresh = float(refresh)
        self.window = float(window)
        self.graphviz = graphviz
        self._sock: socket.socket | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._preview_dir: str | None = None  # the private folder of the previews' socket
        self._preview_sock: socket.socket | None = None
        self._preview_server: asyncio.AbstractServer | None = None
        self._preview_links: set[asyncio.StreamWriter] = set()
        self._previews: dict[str, _Preview] = {
            node.name: _Preview(node.name) for node in flow.graph.consumers if isinstance(node, PreviewConsumer)
        }
        self._preview_nodes = {node.name: node for node in flow.graph.consumers if isinstance(node, PreviewConsumer)}
        self._rates: dict[str, _Rate] = {}
        self._was_running = False
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._outcome: str | None = None
        self._error: str | None = None
        self._final_text: str | None = None
        self._svg: str | None = None
        self._static: dict[str, bytes] = {}
        self._payload = b"{}"
        self._changed = asyncio.Event()
        self._closing = False
        self._stopped = asyncio.Event()
        self._broken = False
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_FlowCollector(self))

    # -- addresses ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` (the port bound, once ``bind()`` has run)."""
        return f"http://{_url_host(self.host)}:{self.port}/"

    def bind(self) -> WebView:
        """Bind the listening socket now (idempotent); ``WebViewError`` when the address cannot be had.

        Also binds the private socket the flow's ``PreviewConsumer``s hand their frames
        to, and gives them its address (so create the view before ``flow.run()``).
        """
        if self._sock is None:
            self._sock = bind_socket(self.host, self.port)
            self.port = int(self._sock.getsockname()[1])
        if self._preview_sock is None and self._preview_nodes:
            folder = tempfile.mkdtemp(prefix="asyncflow-web-")  # only this user may enter it
            path = os.path.join(folder, "previews.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(path)
                sock.listen(16)
                sock.setblocking(False)
            except OSError:
                sock.close()
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._preview_dir, self._preview_sock = folder, sock
            for node in self._preview_nodes.values():
                node.viewer = path
        return self

    def close(self) -> None:
        """Release the listening socket (``stop()`` does it; ``stop(release=False)`` keeps it for a later start)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        preview_sock, self._preview_sock = self._preview_sock, None
        if preview_sock is not None:
            path = preview_sock.getsockname()
            preview_sock.close()
            for node in self._preview_nodes.values():
                if node.viewer == path:
                    node.viewer = None
        folder, self._preview_dir = self._preview_dir, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # -- life cycle ---------------------------------------------------------------------------------
    @property
    def serving(self) -> bool:
        """Whether the view is serving (between ``start()`` and ``stop()``)."""
        return self._runner is not None

    async def start(self) -> None:
        """Bind (if not yet) and serve from the running event loop."""
        if self._runner is not None:
            raise RuntimeError("WebView.start(): already serving")
        self.bind()
        assert self._sock is not None
        self._load_static()
        if self._svg is None:
            use_dot = self.graphviz if self.graphviz is not None else shutil.which("dot") is not None
            drawn = await _graphviz_svg(self.flow) if use_dot else None
            if self.graphviz and drawn is None:
                log.warning("asyncflow web view: graphviz's dot is not available; drawing the graph itself")
            self._svg = drawn or graph_svg(self.flow)
        self._closing = False
        self._stopped = asyncio.Event()
        self._changed = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static_file)
        app.router.add_get("/graph.svg", self._graph)
        app.router.add_get("/api/stats", self._stats)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/preview.mjpg", self._mjpeg)
        app.router.add_get("/preview.jpg", self._jpeg)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        # A duplicate of the bound socket: the server closes its own when it stops, the view keeps
        # the port until close(), so a later start() (another event loop) serves on the same port.
        site = web.SockSite(runner, self._sock.dup())
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self._preview_sock is not None:
            self._preview_server = await asyncio.start_unix_server(self._on_previews, sock=self._preview_sock.dup())
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._ticker(), name="asyncflow-web-ticker")]
        self._tick()

    async def stop(self, *, release: bool = True) -> None:
        """Stop serving: pages get the last figures, then their connections end; release the port unless told not to."""
        runner, self._runner = self._runner, None
        if runner is not None:
            self._tick()
            self._closing = True
            self._wake_clients()
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
            self._tasks.clear()
            server, self._preview_server = self._preview_server, None
            if server is not None:
                server.close()
            for link in list(self._preview_links):
                link.close()
            await asyncio.sleep(0)  # the event streams write the last figures
            await runner.cleanup()
            self._stopped.set()
        if release:
            self.close()

    async def serve_forever(self) -> None:
        """Serve until ``stop()`` is called or this coroutine is cancelled (starting first if needed)."""
        if self._runner is None:
            await self.start()
        await self._stopped.wait()

    async def run_until(self, awaitable: Awaitable[T]) -> T:
        """Serve while awaiting ``awaitable`` (typically ``flow.run()``); return its result.

        When the view is already serving (``async with``, ``start()``), it keeps
        serving afterwards: this only records how the run ended (finished, failed,
        cancelled), which the page then shows.
        """
        owned = self._runner is None
        if owned:
            await self.start()
        self._run_started()
        try:
            result = await awaitable
        except asyncio.CancelledError:
            self._run_ended("cancelled", None)
            raise
        except BaseException as exc:
            self._run_ended("failed", f"{type(exc).__name__}: {exc}")
            raise
        else:
            self._run_ended("finished", None)
            return result
        finally:
            if owned:
                await self.stop()

    async def __aenter__(self) -> WebView:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started_at is not None and self._outcome is None and not self.flow.running:
            if exc_type is None:
                self._run_ended("finished", None)
            elif issubclass(exc_type, asyncio.CancelledError):
                self._run_ended("cancelled", None)
            else:
                self._run_ended("failed", f"{exc_type.__name__}: {exc}")
        await self.stop()

    # -- the run, as the view sees it ----------------------------------------------------------------------
    def _run_started(self) -> None:
        self._started_at = time.monotonic()
        self._ended_at = None
        self._outcome = self._error = self._final_text = None
        self._rates.clear()
        self._was_running = True

    def _run_ended(self, outcome: str, error: str | None) -> None:
        if self._ended_at is None:
            self._ended_at = time.monotonic()
        self._outcome, self._error = outcome, error
        self._was_running = False
        if self._runner is not None:
            self._tick()

    def _elapsed(self) -> float:
        if self._started_at is None:
            return 0.0
        end = self._ended_at if self._ended_at is not None else time.monotonic()
        return max(0.0, end - self._started_at)

    def _state(self) -> str:
        if self.flow.running:
            return "running"
        if self._started_at is None:
            return "waiting"
        return self._outcome or "ended"

    async def _on_previews(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One PreviewConsumer's connection: keep each frame it hands over as its newest."""
        self._preview_links.add(writer)
        try:
            while True:
                frame = await read_preview(reader)
                if frame is None:
                    break
                preview = self._previews.get(frame.node)
                if preview is not None:
                    preview.put(frame)
        except (ConnectionError, ValueError, KeyError, asyncio.IncompleteReadError):
            pass  # a node that went away mid-frame, or something that is not a PreviewConsumer
        finally:
            self._preview_links.discard(writer)
            writer.close()

    # -- ticks ------------------------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            self._tick()

    def _tick(self) -> None:
        """Take the flow's figures now, and push them to the pages."""
        if self._broken:
            return
        try:
            self._payload = json.dumps(self.snapshot(), allow_nan=False, separators=(",", ":")).encode()
        except Exception:
            # A bug here must not take the flow down: stop updating, say so once.
            self._broken = True
            log.warning("asyncflow: the web view failed and stops updating", exc_info=True)
        self._wake_clients()

    def _wake_clients(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for preview in self._previews.values():
            preview._wake()

    def _observe(self, stats: Mapping[str, Any]) -> None:
        running = self.flow.running
        if running and not self._was_running:  # a run the view did not start (flow.run() elsewhere)
            self._run_started()
        elif not running and self._was_running:
            self._ended_at = time.monotonic()
            self._was_running = False
        for name, ts in stats.items():
            rate = self._rates.get(name)
            if rate is None:
                rate = self._rates[name] = _Rate(self.window)
            rate.add(ts.wall_seconds, ts.processed + ts.skipped)

    def _node_rate(self, ns: NodeStats) -> float:
        if ns.finished or not self.flow.running:
            return ns.items_per_second
        return sum(self._rates[t].rate() for t in task_names(ns.node) if t in self._rates)

    def snapshot(self) -> dict[str, Any]:
        """What the page and ``/api/stats`` show: the flow, each node, each task, the verdict, the previews."""
        flow = self.flow
        stats = flow.stats()
        self._observe(stats)
        rows = node_stats(flow, stats)
        report = bottleneck_report(flow, stats)
        state = self._state()
        ended = state not in ("running", "waiting")
        if ended and self._final_text is None and stats:
            self._final_text = str(report)
        nodes = []
        for i, ns in enumerate(rows):
            fill = ns.queue_fill
            aged = ns.kind != "producer" and bool(ns.ages)
            nodes.append(
                {
                    "id": f"n{i}",
                    "name": ns.name,
                    "kind": ns.kind,
                    "class": type(ns.node).__name__,
                    "label": ns.name + (f" {TIMES}{ns.tasks}" if ns.tasks > 1 else ""),
                    "tasks": ns.tasks,
                    "state": _node_state(ns),
                    "items": ns.done,
                    "processed": ns.processed,
                    "received": ns.received,
                    "sent": ns.sent,
                    "skipped": ns.skipped,
                    "dropped": ns.dropped,
                    "drops": dict(ns.drops, **({"other": ns.unattributed_drops} if ns.unattributed_drops else {})),
                    "items_per_second": _num(self._node_rate(ns), 3),
                    "queued": ns.queued,
                    "capacity": ns.capacity if ns.kind != "producer" else None,
                    "queue_fill": _num(fill, 4),
                    "busy": _num(ns.busy_fraction, 4),
                    "mean_seconds": _num(ns.mean_seconds),
                    "p95_seconds": _num(ns.percentile(95)),
                    "max_items_per_second": _num(ns.max_items_per_second, 3),
                    "age_p50": _num(ns.age_percentile(50)) if aged else None,
                    "age_p95": _num(ns.age_percentile(95)) if aged else None,
                    "age_max": _num(ns.age_max) if aged else None,
                    "preview": ns.name in self._previews,
                }
            )
        return {
            "flow": {
                "type": flow.flow_type.value,
                "state": state,
                "running": flow.running,
                "elapsed": _num(self._elapsed(), 3),
                "error": self._error,
                "graph": " -> ".join(n.name for n in flow.graph.order),
                "max_age": getattr(flow.options, "max_age", None),
                "queue_size": flow.options.queue_size,
            },
            "nodes": nodes,
            "tasks": {name: _task_json(name, ts) for name, ts in stats.items()},
            "report": {
                "label": _label(report),
                "bottleneck": report.bottleneck,
                "saturated": report.saturated,
                "too_short": report.too_short,
                "reason": report.reason,
                "notes": list(report.notes),
                "text": self._final_text if ended else None,
            },
            "previews": [preview.as_json() for preview in self._previews.values()],
            "time": round(time.time(), 3),
        }

    # -- HTTP ---------------------------------------------------------------------------------------------
    def _load_static(self) -> None:
        if self._static:
            return
        folder = importlib.resources.files("asyncflow.monitor").joinpath("static")
        for name in _STATIC:
            self._static[name] = folder.joinpath(name).read_bytes()

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self._static["index.html"], content_type="text/html", charset="utf-8")

    async def _static_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = self._static.get(name)
        if body is None or name == "index.html":
            raise web.HTTPNotFound(text=f"no such file: {name}")
        suffix = name[name.rfind(".") :]
        return web.Response(body=body, content_type=_CONTENT_TYPES.get(suffix, "application/octet-stream"))

    async def _graph(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=self._svg or graph_svg(self.flow), content_type="image/svg+xml")

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        self._tick()
        return web.Response(body=self._payload, content_type="application/json", headers={"Cache-Control": "no-store"})

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _stream(self, request: web.Request, content_type: str) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": content_type, "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        return response

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the latest figures at each tick; a slow reader skips the ticks it missed."""
        response = await self._stream(request, "text/event-stream")
        try:
            await response.write(b"retry: 1000\n\n")
            sent: bytes | None = None
            while True:
                changed, payload = self._changed, self._payload
                if payload is not sent:
                    await response.write(b"data: " + payload + b"\n\n")
                    sent = payload
                if self._closing:
                    break
                await changed.wait()
        except ConnectionError:
            pass  # the browser left
        return response

    def _preview_of(self, request: web.Request) -> _Preview:
        name = request.query.get("node")
        if name is None and len(self._previews) == 1:
            name = next(iter(self._previews))
        preview = self._previews.get(name or "")
        if preview is None:
            known = ", ".join(self._previews) or "none"
            raise web.HTTPNotFound(text=f"no PreviewConsumer named {name!r} in this flow (previews: {known})")
        return preview

    async def _jpeg(self, request: web.Request) -> web.StreamResponse:
        preview = self._preview_of(request)
        frame = preview.latest
        if frame is None:
            raise web.HTTPNotFound(text=f"{preview.node} has sent no frame yet")
        return web.Response(body=frame.jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def _mjpeg(self, request: web.Request) -> web.StreamResponse:
        """MJPEG: the newest frame whenever one comes; a slow reader gets fewer frames, never old ones."""
        preview = self._preview_of(request)
        response = await self._stream(request, f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        # Each part's headers go out ahead of its JPEG, right behind the previous JPEG: a browser
        # shows a part only once the next part's headers have come, and a frame must show at once.
        part = f"\r\n--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        try:
            await response.write(part[2:])
            sent = -1
            while not self._closing:
                changed, frame, seq = preview.changed, preview.latest, preview.seq
                if frame is not None and seq != sent:
                    await response.write(frame.jpeg + part)
                    sent = seq
                    continue
                await changed.wait()
        except ConnectionError:
            pass  # the browser left
        return response
