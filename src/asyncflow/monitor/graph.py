"""Pictures of a flow's graph: graphviz DOT, mermaid, and files rendered from them.

``to_dot(flow)`` and ``to_mermaid(flow)`` return text; ``render(flow, path)`` writes
a file chosen by the suffix: ``.dot``/``.gv`` (DOT text), ``.mmd`` (mermaid text),
or an image (``.svg``, ``.png``, ``.pdf``) drawn by graphviz — through the
``graphviz`` Python package, else the ``dot`` executable.  Without either, it
writes the mermaid text next to the requested path (``graph.mmd`` for
``graph.svg``), logs a warning and returns that path.

Each node is labelled with its name, its class, ``nb_tasks`` (a multiplication sign and N, when N > 1), ``gpu``
for ``device_type="gpu"`` and ``unordered`` for ``ordered=False``; producers,
processors and consumers have different shapes.  Edges go parent → child, listed
for each node in the order of its parents (the order of ``process``'s arguments);
a node with several inputs has its edges labelled with the argument position.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.node import Node
from .stats import TIMES, kind_of

if TYPE_CHECKING:
    from ..core.flow import Flow

__all__ = ["IMAGE_FORMATS", "render", "to_dot", "to_mermaid"]

log = logging.getLogger("asyncflow")

#: File suffixes ``render`` draws as images through graphviz.
IMAGE_FORMATS = ("svg", "png", "pdf", "jpg", "jpeg", "gif")

_DOT_STYLE = {
    "producer": 'shape=invhouse, style="filled", fillcolor="#dbeafe"',
    "processor": 'shape=box, style="rounded,filled", fillcolor="#f3f4f6"',
    "consumer": 'shape=house, style="filled", fillcolor="#dcfce7"',
}
_MERMAID_SHAPE = {"producer": ('(["', '"])'), "processor": ('["', '"]'), "consumer": ('[["', '"]]')}
_MERMAID_CLASS = {
    "producer": "fill:#dbeafe,stroke:#1d4ed8",
    "processor": "fill:#f3f4f6,stroke:#4b5563",
    "consumer": "fill:#dcfce7,stroke:#15803d",
}


def _details(node: Node) -> str:
    """``"Sleepy \u00d74 · gpu"``: the class and the settings worth seeing."""
    parts = [type(node).__name__ + (f" {TIMES}{node.nb_tasks}" if node.nb_tasks > 1 else "")]
    if node.device_type == "gpu":
        parts.append("gpu")
    if node.nb_tasks > 1 and not node.ordered:
        parts.append("unordered")
    return " · ".join(parts)


def _edges(flow: Flow) -> list[tuple[int, int, int | None]]:
    """``(parent index, child index, argument position or None)`` for every edge, in run order."""
    index = {id(node): i for i, node in enumerate(flow.graph.order)}
    edges: list[tuple[int, int, int | None]] = []
    for child in flow.graph.order:
        parents = child.parents
        for position, parent in enumerate(parents):
            edges.append((index[id(parent)], index[id(child)], position if len(parents) > 1 else None))
    return edges


def _dot_string(text: str) -> str:
    """A DOT double-quoted string (newlines become ``\\n`` line breaks)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_dot(flow: Flow) -> str:
    """The flow's graph in graphviz DOT, one ``nN`` node per flow node in run order."""
    lines = [
        "digraph asyncflow {",
        f"  label={_dot_string(f'asyncflow ({flow.flow_type.value})')};",
        "  labelloc=t;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for i, node in enumerate(flow.graph.order):
        label = _dot_string(f"{node.name}\n{_details(node)}")
        lines.append(f"  n{i} [label={label}, {_DOT_STYLE[kind_of(node)]}];")
    for parent, child, position in _edges(flow):
        attrs = f' [label="{position}"]' if position is not None else ""
        lines.append(f"  n{parent} -> n{child}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted mermaid label (entities for quotes and angle brackets)."""
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(flow: Flow) -> str:
    """The flow's graph as a mermaid ``flowchart`` (paste it in Markdown or https://mermaid.live)."""
    lines = ["flowchart TD"]
    for i, node in enumerate(flow.graph.order):
        kind = kind_of(node)
        opening, closing = _MERMAID_SHAPE[kind]
        label = f"{_mermaid_text(node.name)}<br/>{_mermaid_text(_details(node))}"
        lines.append(f"  n{i}{opening}{label}{closing}:::{kind}")
    for parent, child, position in _edges(flow):
        arrow = f"-->|{position}|" if position is not None else "-->"
        lines.append(f"  n{parent} {arrow} n{child}")
    for kind, style in _MERMAID_CLASS.items():
        lines.append(f"  classDef {kind} {style}")
    return "\n".join(lines) + "\n"


def _graphviz_module() -> Any:
    """The ``graphviz`` Python package, or ``None`` when it is not installed."""
    try:
        return importlib.import_module("graphviz")
    except ImportError:
        return None


def _draw(dot: str, fmt: str, path: Path) -> bool:
    """Draw ``dot`` into ``path`` with graphviz; ``False`` when graphviz is not available."""
    module = _graphviz_module()
    if module is not None:
        try:
            data: bytes = module.Source(dot).pipe(format=fmt)
        except module.ExecutableNotFound:
            pass  # the package is there, its executable is not
        else:
            path.write_bytes(data)
            return True
    executable = shutil.which("dot")
    if executable is None:
        return False
    subprocess.run([executable, f"-T{fmt}", "-o", os.fspath(path)], input=dot.encode(), check=True)
    return True


def render(flow: Flow, path: str | os.PathLike[str], *, warn: bool = True) -> Path:
    """Write a picture of ``flow``'s graph to ``path`` (format from its suffix); return the path written.

    ``.dot``/``.gv``: DOT text; ``.mmd``/``.mermaid``: mermaid text; an image suffix
    (see :data:`IMAGE_FORMATS`): drawn by graphviz, or — when neither the ``graphviz``
    package nor the ``dot`` executable is available — mermaid text written to the same
    path with the ``.mmd`` suffix instead: a warning on the ``asyncflow`` logger says so
    (unless ``warn=False``), and the returned path differs from ``path``.  Any other
    suffix raises ``ValueError``.
    """
    target = Path(path)
    suffix = target.suffix.lower().lstrip(".")
    if suffix in ("dot", "gv"):
        target.write_text(to_dot(flow))
        return target
    if suffix in ("mmd", "mermaid"):
        target.write_text(to_mermaid(flow))
        return target
    if suffix not in IMAGE_FORMATS:
        raise ValueError(
            f"render(): cannot tell the format of {os.fspath(path)!r}; use .svg, .png, .pdf, .dot or .mmd"
        )
    fmt = "jpg" if suffix == "jpeg" else suffix
    if _draw(to_dot(flow), fmt, target):
        return target
    fallback = target.with_suffix(".mmd")
    fallback.write_text(to_mermaid(flow))
    if not warn:
        return fallback
    log.warning(
        "asyncflow: graphviz is not installed (neither the 'graphviz' package nor the 'dot' program), so %s "
        "was not drawn; wrote mermaid text to %s instead (render it at https://mermaid.live)",
        target,
        fallback,
    )
    return fallback
