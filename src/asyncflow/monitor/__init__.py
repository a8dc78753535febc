"""Watching and explaining flows: a live terminal display, a bottleneck report and graph pictures.

- ``LiveDisplay(flow)``: a live table of the running flow, one row per node (rich).
- ``bottleneck_report(flow)``: per-node times after (or during) a run, and the node
  that limits throughput, with the reason.
- ``to_dot(flow)`` / ``to_mermaid(flow)`` / ``render(flow, path)``: the graph as
  graphviz DOT, mermaid, or a drawn file.
- ``WebView(flow, port=8000)``: the same live in a browser (graph, table, verdict,
  video previews), with ``/api/stats`` and ``/metrics``; needs the ``web`` extra
  (aiohttp, prometheus-client), imported on first use.

``asyncflow run module:attr`` and ``asyncflow.run(flow, progress=True, report=True)``
use the first two.
"""

from typing import TYPE_CHECKING

from asyncflow._lazy import lazy_exports

from .graph import render, to_dot, to_mermaid
from .live import LiveDisplay
from .report import NodeReport, Report, bottleneck_report
from .stats import NodeStats, node_stats

if TYPE_CHECKING:
    from .web import WebView

__all__ = [
    "LiveDisplay",
    "NodeReport",
    "NodeStats",
    "Report",
    "WebView",
    "bottleneck_report",
    "node_stats",
    "render",
    "to_dot",
    "to_mermaid",
]

__getattr__ = lazy_exports(__name__, {"WebView": "asyncflow.monitor.web"})
